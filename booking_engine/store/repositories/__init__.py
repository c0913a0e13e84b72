"""The store's repositories, one module per aggregate: row <-> entity mapping and the queries
the services need, one function each.

Every function takes the open ``Connection`` of the caller's transaction: the service
decides the transaction, the repository only reads and writes inside it. The services import
these modules (``from booking_engine.store.repositories import bookings as booking_rows``),
never the tables.

- ``users``: the user row (created on first sight, profile fields).
- ``availability``: an expert's settings and dated exceptions.
- ``busy_time``: what makes an expert busy (active bookings, imported busy blocks), as read
  by availability and by the conflict check.
- ``bookings``, ``booking_requests``: the booking aggregates, their due scans and the audit.
- ``reminders``: the partial-index scans for reminders and start announcements.
- ``outbox``: domain events written in the caller's transaction.
- ``connections``: calendar connections (status, config, credentials, sync lease, progress).
- ``calendar_sync``: what a sync keeps per connection: busy blocks, cursors, the events
  pushed for bookings and push errors.
- ``watch_channels``: Google push-notification channels.
- ``oauth_states``: pending OAuth authorizations.
- ``webhook_subscriptions``: outbound webhook subscriptions.
- ``service_keys``: the host app's back ends' keys (hashes, scopes, revocation).
- ``calendar_feeds``: the hash of each person's calendar-feed token.
- ``heartbeats``, ``operations``, ``encrypted``: worker heartbeats, the operator's counts,
  the encrypted columns key rotation walks.
"""
