"""SabreDAV (Debian package ``php-sabre-dav``, the engine behind Nextcloud and Baikal) under ``php -S``.

``sabredav_server.php`` wires SabreDAV's PDO backends to a SQLite file in the work dir, with
HTTP Basic auth. Debian's SabreDAV is the 1.8 series: it has no sync-collection, so calbook
reaches it through the ctag/etag fallback - which is why it is in the suite. It writes hrefs
with lower-case percent escapes (``%7b``), unlike the others.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from tests.support.caldav_servers.base import Account, CalDAVServer, Features, ServerUnavailable

SABRE = Path("/usr/share/php/Sabre/autoload.php")
SCHEMA = Path("/usr/share/doc/php-sabre-dav/examples/sql")
SERVER_PHP = Path(__file__).with_name("sabredav_server.php")


class SabreDAVServer(CalDAVServer):
    name = "sabredav"
    features = Features(sync_collection=False, unique_uid=False, honours_bad_tokens=True)

    def _launch(self) -> subprocess.Popen[bytes]:
        if not SABRE.exists() or shutil.which("php") is None:
            raise ServerUnavailable("SabreDAV needs the Debian packages php-sabre-dav php-cli php-sqlite3")
        self.database = self.workdir / "sabre.sqlite"
        with sqlite3.connect(self.database) as db:
            db.execute("PRAGMA journal_mode=WAL")
            for part in ("principals", "calendars"):
                db.executescript((SCHEMA / f"sqlite.{part}.sql").read_text())
            db.execute("DELETE FROM principals")  # the examples' admin
            db.execute("CREATE TABLE calbook_users (username TEXT PRIMARY KEY, password TEXT NOT NULL)")
        command = ["php", "-d", "display_errors=stderr", "-S", f"127.0.0.1:{self.port}", str(SERVER_PHP)]
        return self._spawn(command, env={"SABRE_DB": str(self.database), "PHP_CLI_SERVER_WORKERS": "4"},
                           cwd=self.workdir)

    def _create_user(self, username: str, password: str) -> Account:
        with sqlite3.connect(self.database, timeout=30) as db:
            db.execute("INSERT INTO calbook_users VALUES (?, ?)", (username, password))
            db.execute("INSERT INTO principals (uri, email, displayname) VALUES (?, ?, ?)",
                       (f"principals/{username}", f"{username}@example.org", username))
        return Account(username, password, home=f"/calendars/{username}/", principal=f"/principals/{username}/")
