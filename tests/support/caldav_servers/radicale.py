"""Radicale (the Python package) with htpasswd auth and storage under the work dir."""

from __future__ import annotations

import subprocess
import sys
import threading

from tests.support.caldav_servers.base import Account, CalDAVServer, Features


class RadicaleServer(CalDAVServer):
    name = "radicale"
    features = Features(sync_collection=True, unique_uid=False, honours_bad_tokens=True)

    _users_lock = threading.Lock()

    def _launch(self) -> subprocess.Popen[bytes]:
        self.htpasswd = self.workdir / "users"
        self.htpasswd.write_text("")
        config = self.workdir / "config"
        config.write_text("")
        command = [
            sys.executable, "-m", "radicale",
            "--config", str(config),
            "--server-hosts", f"127.0.0.1:{self.port}",
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(self.htpasswd),
            "--auth-htpasswd-encryption", "plain",
            "--auth-delay", "0",
            "--rights-type", "owner_only",
            "--storage-filesystem-folder", str(self.workdir / "collections"),
            "--logging-level", "warning",
        ]  # fmt: skip
        return self._spawn(command)

    def _create_user(self, username: str, password: str) -> Account:
        # Radicale re-reads the htpasswd file when it changes: a new line is a new account.
        with self._users_lock, self.htpasswd.open("a") as users:
            users.write(f"{username}:{password}\n")
        return Account(username, password, home=f"/{username}/", principal=f"/{username}/")
