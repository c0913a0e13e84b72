"""Key rotation: every secret at rest re-encrypted with the first key of ``CALBOOK_ENCRYPTION_KEY``.

The key setting lists keys comma-separated: the first encrypts, all decrypt. To retire a key,
an operator puts a new one first, keeps the old one after it, runs ``calbook admin rotate-key``
(this), and may then drop the old key: nothing is encrypted with it any more
(docs/operations.md#admin-commands). The cryptography is the caller's (``rotate``, from
``connectors.secrets``); this walks the encrypted columns in small write transactions and swaps
each token only if the row still holds it, so a secret written meanwhile is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from booking_engine.store.db import Store
from booking_engine.store.repositories import encrypted

#: Token -> the same secret encrypted with the first key; ``None`` when no configured key opens it.
Rotate = Callable[[str], str | None]


@dataclass(slots=True)
class Rotation:
    rewritten: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


def reencrypt_all(store: Store, rotate: Rotate) -> Rotation:
    result = Rotation()
    for table, key, column in encrypted.ENCRYPTED:
        rewritten = unreadable = 0
        after: str | None = None
        while True:
            with store.write() as conn:
                rows = encrypted.tokens_after(conn, key, column, after)
                for row, token in rows:
                    fresh = rotate(token)
                    if fresh is None:
                        unreadable += 1
                    elif encrypted.replace_token(conn, table, key, column, row, token, fresh):
                        rewritten += 1
            if not rows:
                break
            after = rows[-1][0]
        result.rewritten[table.name] = rewritten
        result.unreadable[table.name] = unreadable
    return result
