"""Calendar sync in the worker: build a provider for a connection, pull, push, coalesce.

``providers`` turns a stored connection into a ``connectors.base.CalendarProvider``;
``sync`` pulls busy time into the store; ``push`` writes booking events out. The Celery
tasks around them live in ``worker.tasks.sync``.
"""
