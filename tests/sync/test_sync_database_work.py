"""How much database work one incremental sync costs (docs/scaling.md#database-work-per-sync).

At ten thousand connections the sync worker's own database work is what the database pays for
every few minutes per calendar; a regression there costs capacity quietly. These tests count,
with SQLAlchemy's own events on the real store (SQLite and PostgreSQL), the units of work (a
connection taken from the pool: one transaction, or one autocommit read on PostgreSQL) and the
statements of an incremental sync of one CalDAV calendar against Radicale, with and without a
change to apply, and hold them to the budget the docs give. With nothing new (the ctag did not
move) the calendar's own transaction is skipped: no cursor is written back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from booking_engine.model import AvailabilitySettings
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.caldav import Direct
from tests.support.sync import blocks, connect, day, event_text
from worker import wiring

#: The budgets docs/scaling.md#database-work-per-sync gives one incremental sync of one calendar:
#: (units of work, statements) when nothing changed and when an event did. SQLite counts its
#: ``BEGIN`` as a statement; PostgreSQL's psycopg does not, so it stays under the same budget.
NOTHING_NEW = (3, 11)
ONE_CHANGE = (4, 16)


@dataclass
class Counted:
    units: int = 0
    statements: list[str] = field(default_factory=list)

    def report(self) -> str:
        return f"{self.units} units of work, {len(self.statements)} statements:\n" + "\n".join(self.statements)


@contextmanager
def counting(store: Store) -> Iterator[Counted]:
    counted = Counted()

    def on_checkout(*_: Any) -> None:
        counted.units += 1

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counted.statements.append(" ".join(statement.split()[:4]))

    event.listen(store.engine, "checkout", on_checkout)
    event.listen(store.engine, "before_cursor_execute", on_statement)
    try:
        yield counted
    finally:
        event.remove(store.engine, "checkout", on_checkout)
        event.remove(store.engine, "before_cursor_execute", on_statement)


def _synced_once(store: Store, direct: Direct, calendar_path: str, calendar_url: str) -> str:
    """A connection of one calendar holding one event, after its first sync."""
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    connection_id = connect(store, calendar_url)
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    return connection_id


def _within(counted: Counted, budget: tuple[int, int]) -> None:
    units, statements = budget
    # The counting itself is real: the sync's lease and its finish are among what was seen.
    assert counted.units >= 2 and any(s.startswith("UPDATE calendar_connections") for s in counted.statements), \
        counted.report()
    assert counted.units <= units, counted.report()
    assert len(counted.statements) <= statements, counted.report()


def test_an_incremental_sync_with_nothing_new_stays_in_its_budget(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str,
) -> None:
    connection_id = _synced_once(store, direct, calendar_path, calendar_url)

    with counting(store) as counted:
        assert wiring.sync_connection(store, connection_id, Settings()).status == "active"

    _within(counted, NOTHING_NEW)
    assert not any(s.startswith("UPDATE calendar_sync_state") for s in counted.statements), counted.report()


def test_an_incremental_sync_with_a_change_stays_in_its_budget(
    store: Store, expert: AvailabilitySettings, direct: Direct, calendar_path: str, calendar_url: str,
) -> None:
    connection_id = _synced_once(store, direct, calendar_path, calendar_url)
    direct.put(calendar_path + "b.ics", event_text("b", day(2, 9), day(2, 10)))

    with counting(store) as counted:
        assert wiring.sync_connection(store, connection_id, Settings()).status == "active"

    assert [ext.rsplit("/", 1)[-1] for ext, _, _ in blocks(store, connection_id)] == ["a.ics", "b.ics"]
    _within(counted, ONE_CHANGE)
