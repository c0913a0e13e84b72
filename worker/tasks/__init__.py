"""Every Celery task of calbook; importing this package registers them and the default handlers.

Tasks are thin: they take no ORM objects (most take no arguments at all), load fresh state
through a service or the outbox, and are idempotent, so ``acks_late`` redeliveries and
duplicate beat ticks are harmless.
"""

from worker import handlers  # noqa: F401  (registers the default outbox handlers)
from worker.tasks import (  # noqa: F401
    audit,
    google,  # noqa: F401  (Google watch channels, webhook-triggered sync)
    jobs,
    microsoft,  # noqa: F401  (Microsoft subscription renewal and reauth hook)
    outbox,
    sync,  # noqa: E402,F401  (calendar sync tasks and push handlers)
    webhooks,
)
