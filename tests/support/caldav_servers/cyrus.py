"""Cyrus IMAP with its CalDAV module (the engine behind Fastmail), from the Debian packages.

A private ``imapd.conf``/``cyrus.conf`` under a temporary directory, passwords in a sasldb
made with ``saslpasswd2`` (``sasl_pwcheck_method: auxprop``), users created on their first
IMAP login (``autocreate_users: anyone``) and their calendar home on the first CalDAV request
(``caldav_create_default: yes``); ``master`` runs in the foreground on two private ports
(HTTP for CalDAV, IMAP for the logins). Every service gets ``-C`` on its command line: Cyrus's
``master`` does not pass its own on. There is no syslog here, so Cyrus's own log is lost; its
errors reach the tests through the HTTP answers (and ``master``'s stderr in the log file).

``master`` must start as root (it drops to the ``cyrus`` user) or as ``cyrus``; the work dir
is then handed to that user.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.caldav_servers.base import Account, CalDAVServer, Features, ServerUnavailable, free_port

CYRUS_BIN = Path("/usr/lib/cyrus/bin")
REALM = "localhost"


class CyrusServer(CalDAVServer):
    name = "cyrus"
    features = Features(sync_collection=True, unique_uid=True, honours_bad_tokens=True)
    root = "/dav/"

    def __init__(self, workdir: Path) -> None:
        # The pytest tmp dirs are private to root: Cyrus, running as ``cyrus``, gets one of its own.
        self._private = Path(tempfile.mkdtemp(prefix="calbook-cyrus-"))
        super().__init__(self._private)
        self.imap_port = free_port()

    def _launch(self) -> subprocess.Popen[bytes]:
        master = CYRUS_BIN / "master"
        if not master.exists() or not (CYRUS_BIN / "httpd").exists() or shutil.which("saslpasswd2") is None:
            raise ServerUnavailable("Cyrus needs the Debian packages cyrus-imapd cyrus-caldav sasl2-bin")
        try:
            cyrus = pwd.getpwnam("cyrus")
        except KeyError as exc:
            raise ServerUnavailable("no cyrus user (install cyrus-common)") from exc
        if os.geteuid() not in (0, cyrus.pw_uid):
            raise ServerUnavailable("Cyrus's master must start as root or as the cyrus user")
        base = self.workdir
        for sub in ("config/socket", "spool", "run/socket", "run/proc", "run/lock", "sieve"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.config = base / "imapd.conf"
        self.sasldb = base / "sasldb2"
        self.config.write_text(
            "\n".join(
                [
                    f"configdirectory: {base}/config",
                    "defaultpartition: default",
                    f"partition-default: {base}/spool",
                    f"proc_path: {base}/run/proc",
                    f"mboxname_lockpath: {base}/run/lock",
                    f"sievedir: {base}/sieve",
                    f"lmtpsocket: {base}/run/socket/lmtp",
                    f"idlesocket: {base}/run/socket/idle",
                    f"notifysocket: {base}/run/socket/notify",
                    f"servername: {REALM}",
                    "admins: cyrusadmin",
                    "allowplaintext: yes",
                    "sasl_pwcheck_method: auxprop",
                    "sasl_auxprop_plugin: sasldb",
                    f"sasl_sasldb_path: {self.sasldb}",
                    "sasl_mech_list: PLAIN LOGIN",
                    "httpmodules: caldav",
                    "httpallowcompress: no",
                    "autocreate_users: anyone",
                    "autocreate_quota: 0",
                    "caldav_create_default: yes",
                    "caldav_create_sched: yes",
                    "caldav_create_attach: no",
                    "virtdomains: off",
                    "hashimapspool: false",
                    "",
                ]
            )
        )
        conf = f"-C {self.config}"
        (base / "cyrus.conf").write_text(
            "START {\n"
            f'  recover cmd="ctl_cyrusdb -r {conf}"\n'
            "}\nSERVICES {\n"
            f'  imap cmd="imapd {conf}" listen="127.0.0.1:{self.imap_port}" prefork=0\n'
            f'  http cmd="httpd {conf}" listen="127.0.0.1:{self.port}" prefork=1\n'
            "}\nEVENTS {\n}\nDAEMON {\n}\n"
        )
        self._set_password("cyrusadmin", "unused-admin-pw")  # creates the sasldb
        if os.geteuid() == 0:
            for path in [base, *base.rglob("*")]:
                os.chown(path, cyrus.pw_uid, cyrus.pw_gid)
        command = [
            str(master), "-C", str(self.config), "-M", str(base / "cyrus.conf"),
            "-p", str(base / "run" / "master.pid"), "-D",
        ]  # fmt: skip
        # The log lives outside the (chowned) work dir's permissions trouble: root writes it.
        return self._spawn(command)

    def _set_password(self, username: str, password: str) -> None:
        subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(self.sasldb), "-u", REALM, username],
            input=password.encode(), check=True, capture_output=True, timeout=30,
        )

    def _create_user(self, username: str, password: str) -> Account:
        self._set_password(username, password)
        # The first IMAP login creates the user's INBOX, which the CalDAV home needs.
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        try:
            imap.login(username, password)
        finally:
            imap.logout()
        return Account(
            username, password, home=f"/dav/calendars/user/{username}/", principal=f"/dav/principals/user/{username}/"
        )

    def _cleanup(self) -> None:
        shutil.rmtree(self._private, ignore_errors=True)
