"""Real CalDAV servers for the tests, and the fault proxy that sits in front of them.

Nothing of calbook is mocked: the provider talks HTTP to Radicale, Cyrus, DAViCal or SabreDAV
(``SERVERS``), usually through ``FaultProxy``, which counts requests and can inject failures.
"""

from tests.support.caldav_servers.base import (
    PASSWORD,
    USERNAME,
    Account,
    CalDAVServer,
    Features,
    ServerUnavailable,
    free_port,
)
from tests.support.caldav_servers.cyrus import CyrusServer
from tests.support.caldav_servers.davical import DAViCalServer
from tests.support.caldav_servers.proxy import Fault, FaultProxy, Seen
from tests.support.caldav_servers.radicale import RadicaleServer
from tests.support.caldav_servers.sabredav import SabreDAVServer

SERVERS: dict[str, type[CalDAVServer]] = {
    "radicale": RadicaleServer,
    "cyrus": CyrusServer,
    "davical": DAViCalServer,
    "sabredav": SabreDAVServer,
}

__all__ = [
    "PASSWORD", "SERVERS", "USERNAME", "Account", "CalDAVServer", "CyrusServer", "DAViCalServer", "Fault",
    "FaultProxy", "Features", "RadicaleServer", "SabreDAVServer", "Seen", "ServerUnavailable", "free_port",
]
