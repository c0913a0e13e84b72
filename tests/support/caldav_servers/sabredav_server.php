<?php
// A throwaway SabreDAV CalDAV server for calbook's tests (Debian's php-sabre-dav): the PDO SQLite
// backends for principals and calendars, HTTP Basic auth against a table of plain passwords.
// Run as the router script of `php -S`; SABRE_DB names the SQLite file.
date_default_timezone_set('UTC');
require_once 'Sabre/autoload.php';

$pdo = new \PDO('sqlite:' . getenv('SABRE_DB'));
$pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
$pdo->setAttribute(PDO::ATTR_TIMEOUT, 30);

class CalbookBasicAuth extends \Sabre\DAV\Auth\Backend\AbstractBasic {
    private $pdo;
    public function __construct(\PDO $pdo) { $this->pdo = $pdo; }
    protected function validateUserPass($username, $password) {
        $query = $this->pdo->prepare('SELECT password FROM calbook_users WHERE username = ?');
        $query->execute(array($username));
        $stored = $query->fetchColumn();
        return $stored !== false && hash_equals($stored, $password);
    }
}

$principals = new \Sabre\DAVACL\PrincipalBackend\PDO($pdo);
$calendars = new \Sabre\CalDAV\Backend\PDO($pdo);
$server = new \Sabre\DAV\Server(array(
    new \Sabre\CalDAV\Principal\Collection($principals),
    new \Sabre\CalDAV\CalendarRootNode($principals, $calendars),
));
$server->setBaseUri('/');
$server->addPlugin(new \Sabre\DAV\Auth\Plugin(new CalbookBasicAuth($pdo), 'calbook-test'));
$server->addPlugin(new \Sabre\DAVACL\Plugin());
$server->addPlugin(new \Sabre\CalDAV\Plugin());
$server->exec();
