"""Senders driven by the outbox: e-mail (SMTP, with iCalendar invites) and signed webhooks."""
