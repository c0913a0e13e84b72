"""kombu's Redis transport with one fix: a worker survives a Redis outage with tasks in flight.

The defect (kombu 5.7 with celery 5.7, both current): when the broker connection breaks,
celery's consumer first ``collect()``s the connection, which detaches the transport from its
``Connection`` (``transport.client = None``), and then ``close()``s it. Closing the default
channel a second time reaches ``QoS.restore_unacked_once`` with the unacknowledged messages
of the lost connection; restoring them needs a new Redis pool, whose parameters are read
from ``transport.client.hostname`` -> ``AttributeError: 'NoneType' object has no attribute
'hostname'``. That is not a connection error, so celery reports it as unrecoverable and the
worker exits, for good. It happens whenever tasks were unacknowledged at the moment Redis
went away, that is, under load.

It is not the only such path: a task that finishes after the reconnect acknowledges its
message on the old, closed channel, which ends the same way (``'NoneType' object has no
attribute 'client'``). The fix is therefore where both meet: a channel that has no
connection left to build a Redis pool from raises a Redis ``ConnectionError``, which every
caller already handles as the broker being gone (the close ignores it, the late ack is
logged and dropped). Nothing is lost: with ack emulation the messages also sit in Redis's
own unacked index, which redelivers them after the visibility timeout if Redis kept them,
and calbook's tasks carry no state (the outbox rows and webhook deliveries in the database
are the work; beat's next tick triggers it again). ``tests/worker/test_redis_outage.py``
kills a real Redis under load.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

#: What ``broker_transport`` names for ``redis://`` and ``rediss://`` broker URLs.
TRANSPORT_PATH = "worker.broker:RedisTransport"


class RedisChannel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel
