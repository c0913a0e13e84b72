"""The triggers that bump ``expert_versions`` on every write an expert's read views depend on.

Triggers rather than calls in the services (docs/decisions/0019-expert-version-by-trigger.md):
every writer bumps the version in the same transaction as its write, including the
worker's bulk busy-block replacement and raw SQL paths, so no write path can forget it and
an ETag built from the version can never outlive the answer it names.

Used by migration 0012; ``WATCHED`` is the one list of what counts.
"""

from __future__ import annotations

# (table, column holding the expert's id). ``users`` counts because an expert who never
# published reads the defaults in their profile's timezone.
WATCHED: tuple[tuple[str, str], ...] = (
    ("bookings", "expert_id"),
    ("availability_settings", "expert_id"),
    ("availability_exceptions", "expert_id"),
    ("busy_blocks", "expert_id"),
    ("booking_requests", "expert_id"),
    ("users", "id"),
)

_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _name(table: str, event: str = "") -> str:
    return f"trg_expert_version_{table}" + (f"_{event.lower()}" if event else "")


def _sqlite_bump(ref: str) -> str:
    return (
        f"INSERT INTO expert_versions (expert_id, version) VALUES ({ref}, 1) "
        "ON CONFLICT (expert_id) DO UPDATE SET version = expert_versions.version + 1;"
    )


def create_statements(dialect: str) -> list[str]:
    """The DDL creating the bump triggers on ``dialect`` ("sqlite" or "postgresql")."""
    out: list[str] = []
    for table, column in WATCHED:
        if dialect == "postgresql":
            fn = f"calbook_bump_expert_version_{table}"
            out.append(
                f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "BEGIN\n"
                "  IF TG_OP <> 'DELETE' THEN\n"
                f"    INSERT INTO expert_versions (expert_id, version) VALUES (NEW.{column}, 1)\n"
                "    ON CONFLICT (expert_id) DO UPDATE SET version = expert_versions.version + 1;\n"
                "  END IF;\n"
                f"  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.{column} IS DISTINCT FROM NEW.{column}) THEN\n"
                f"    INSERT INTO expert_versions (expert_id, version) VALUES (OLD.{column}, 1)\n"
                "    ON CONFLICT (expert_id) DO UPDATE SET version = expert_versions.version + 1;\n"
                "  END IF;\n"
                "  RETURN NULL;\n"
                "END $$"
            )
            out.append(
                f"CREATE TRIGGER {_name(table)} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {fn}()"
            )
        elif dialect == "sqlite":
            for event in _EVENTS:
                refs = {"INSERT": [f"NEW.{column}"], "DELETE": [f"OLD.{column}"]}.get(event)
                if refs is None:  # UPDATE: the new owner, and the old one if it changed
                    body = _sqlite_bump(f"NEW.{column}") + (
                        f" INSERT INTO expert_versions (expert_id, version) SELECT OLD.{column}, 1 "
                        f"WHERE OLD.{column} IS NOT NEW.{column} "
                        "ON CONFLICT (expert_id) DO UPDATE SET version = expert_versions.version + 1;"
                    )
                else:
                    body = _sqlite_bump(refs[0])
                out.append(f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} BEGIN {body} END")
        else:
            raise ValueError(f"no expert-version triggers for dialect {dialect!r}")
    return out


def drop_statements(dialect: str) -> list[str]:
    out: list[str] = []
    for table, _column in WATCHED:
        if dialect == "postgresql":
            out.append(f"DROP TRIGGER IF EXISTS {_name(table)} ON {table}")
            out.append(f"DROP FUNCTION IF EXISTS calbook_bump_expert_version_{table}()")
        else:
            out.extend(f"DROP TRIGGER IF EXISTS {_name(table, event)}" for event in _EVENTS)
    return out
