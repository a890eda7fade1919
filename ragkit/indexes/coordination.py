"""One coordinator per database: a PostgreSQL session advisory lock held for a distributed run.

The KB's writer lock is a file in the KB folder, which only stops a second writer on the same machine; two
`ragkit ingest --ray` coordinators on different machines sharing one database would both plan, and each
would redo the other's work. The lock lives in PostgreSQL itself and ends with the session, so a killed
coordinator never leaves it behind. SQLite has one writer per file anyway: there it is always granted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ragkit.indexes.idempotent import uri_key


@contextlib.contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Hold the database-wide lock `name` while the block runs; yields False (and holds nothing) when another
    session holds it."""
    if engine.url.get_backend_name() != "postgresql":
        yield True
        return
    key = uri_key(f"ragkit-coordinator:{name}")
    with engine.connect() as c:
        got = bool(c.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        c.commit()  # the lock belongs to the session, not to this transaction
        try:
            yield got
        finally:
            if got:
                c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                c.commit()
