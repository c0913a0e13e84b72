"""Every Celery task of calbook (``worker.app`` imports this package, which is how Celery knows them).

Tasks are thin: they take no ORM objects (most take no arguments at all), take the process's
resources from ``worker.wiring.current()``, call a service or a worker function with them, and
are idempotent, so ``acks_late`` redeliveries and duplicate beat ticks are harmless.
"""

from worker.tasks import audit, google, jobs, microsoft, outbox, sync, webhooks  # noqa: F401
