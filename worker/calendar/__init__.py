"""Calendar sync in the worker: build a provider for a connection, pull, push, watch channels.

``providers`` turns a stored connection into a ``connectors.base.CalendarProvider``;
``sync`` pulls busy time into the store; ``push`` writes booking events out; ``google`` keeps
Google's watch channels. The Celery tasks around them are ``worker.tasks.sync`` and
``worker.tasks.google``; what runs when is ``worker.wiring``'s tables.
"""
