"""DAViCal (Debian package ``davical``) under ``php -S``, on a throwaway PostgreSQL database of its own.

The database is created by DAViCal's own ``create-database.sh`` with ``postgres`` as both its
admin and application user (so no cluster-wide roles are added), gets a unique name per test
session, and is dropped when the server stops: no other test's database is touched.

DAViCal looks for its configuration in ``/etc/davical`` first; ``open_basedir`` keeps it away
from there, so it falls through to ``../config/config.php`` next to a private document root
of links into ``/usr/share/davical/htdocs``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.caldav_servers.base import Account, CalDAVServer, Features, ServerUnavailable

DAVICAL = Path("/usr/share/davical")
PG_URL = os.environ.get("CALBOOK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


class DAViCalServer(CalDAVServer):
    name = "davical"
    # An unknown sync token is answered with 207 and a full listing (no deletions in it).
    features = Features(sync_collection=True, unique_uid=False, honours_bad_tokens=False)
    root = "/caldav.php/"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.database = f"davical_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        parts = urlsplit(PG_URL.replace("+psycopg", ""))
        self.pg = {"host": parts.hostname or "127.0.0.1", "port": str(parts.port or 5432),
                   "user": parts.username or "postgres"}
        self._created = False

    def _psql_env(self) -> dict[str, str]:
        return {"PGHOST": self.pg["host"], "PGPORT": self.pg["port"], "PGUSER": self.pg["user"],
                "PGOPTIONS": "--client-min-messages=warning"}

    def _launch(self) -> subprocess.Popen[bytes]:
        if not (DAVICAL / "htdocs" / "caldav.php").exists() or shutil.which("php") is None:
            raise ServerUnavailable("DAViCal needs the Debian packages davical php-cli php-pgsql")
        if shutil.which("psql") is None:
            raise ServerUnavailable("DAViCal's database script needs psql (postgresql-client)")
        env = {**os.environ, **self._psql_env(),
               "PSQLOPTS": f"-h {self.pg['host']} -p {self.pg['port']} -U {self.pg['user']}"}
        self._created = True
        done = subprocess.run(
            ["sh", str(DAVICAL / "dba" / "create-database.sh"), self.database, "admin-unused",
             self.pg["user"], self.pg["user"]],
            env=env, capture_output=True, timeout=120,
        )
        if done.returncode != 0 or b"ERROR" in done.stdout + done.stderr:
            raise RuntimeError(f"DAViCal database creation failed: {(done.stdout + done.stderr).decode()[-2000:]}")
        docroot = self.workdir / "htdocs"
        docroot.mkdir()
        for item in (DAVICAL / "htdocs").iterdir():
            (docroot / item.name).symlink_to(item)
        (self.workdir / "inc").symlink_to(DAVICAL / "inc")
        (self.workdir / "config").mkdir()
        (self.workdir / "config" / "config.php").write_text(
            "<?php\n"
            f'$c->pg_connect[] = "dbname={self.database} user={self.pg["user"]} host={self.pg["host"]} '
            f'port={self.pg["port"]}";\n'
            "$c->admin_email = 'admin@example.org';\n"
            "$c->collections_always_exist = false;\n"
        )
        basedir = ":".join([str(self.workdir), str(DAVICAL), "/usr/share/awl", "/usr/share/php",
                            "/usr/share/zoneinfo", "/dev/urandom"])
        command = ["php", "-d", f"open_basedir={basedir}", "-d", "display_errors=stderr",
                   "-S", f"127.0.0.1:{self.port}", "-t", str(docroot)]
        return self._spawn(command, env={"PHP_CLI_SERVER_WORKERS": "4"}, cwd=docroot)

    def _create_user(self, username: str, password: str) -> Account:
        sql = (
            "WITH u AS (INSERT INTO usr (active, email_ok, updated, username, password, fullname, email) "
            f"VALUES (TRUE, current_date, current_date, '{username}', '**{password}', '{username}', "
            f"'{username}@example.org') RETURNING user_no) "
            "INSERT INTO principal (type_id, user_no, displayname, default_privileges) "
            f"SELECT 1, user_no, '{username}', 0::BIT(24) FROM u;"
        )
        subprocess.run(["psql", "-qXAt", "-v", "ON_ERROR_STOP=1", "-c", sql, self.database],
                       env={**os.environ, **self._psql_env()}, check=True, capture_output=True, timeout=30)
        return Account(username, password, home=f"/caldav.php/{username}/", principal=f"/caldav.php/{username}/")

    def _cleanup(self) -> None:
        if not self._created:
            return
        env = {**os.environ, **self._psql_env()}
        subprocess.run(
            ["psql", "-qXAt", "-c",
             f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.database}'", "postgres"],
            env=env, capture_output=True, timeout=30,
        )
        subprocess.run(["dropdb", "--if-exists", self.database], env=env, capture_output=True, timeout=60)
