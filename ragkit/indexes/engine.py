"""Connecting to a knowledge base's database: URL checks, engines with the right settings per backend, and
connection errors that say what to do. SQLite (a file in the KB) and PostgreSQL (extra ragkit[pg])."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from ragkit.errors import ConfigError, DependencyError, KnowledgeBaseError, driver_message


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and the other way round
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


PG_EXTRA_HINT = "install PostgreSQL support with: pip install 'ragkit[pg]'"


def parse_database_url(url: str) -> URL:
    """Validate a database URL; plain `postgresql://` (or `postgres://`) means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database_url {url!r} is not a database URL; use e.g. postgresql+psycopg://USER@HOST:5432/DBNAME"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgres" or parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"database_url {parsed.render_as_string(hide_password=True)!r}: ragkit stores knowledge bases in SQLite "
            "or PostgreSQL only (postgresql+psycopg://USER@HOST:5432/DBNAME)"
        )
    return parsed


def check_same_database(kb: Path, recorded: str | None, requested: str | None) -> None:
    """Refuse to open a KB on another database than the one its ragkit.toml records (None = its SQLite file):
    its FAISS index and manifest describe that database's chunks."""
    if requested is None or requested == recorded:
        return
    if recorded is not None and parse_database_url(recorded) == parse_database_url(requested):
        return

    def shown(url: str | None) -> str:
        return "its SQLite file" if url is None else parse_database_url(url).render_as_string(hide_password=True)

    raise KnowledgeBaseError(
        f"knowledge base {kb} keeps its data in {shown(recorded)}, not {shown(requested)}; drop --db (and RAGKIT_DB) "
        "to use its own database, use a new --kb directory for the other one, or edit database_url in "
        f"{kb / 'ragkit.toml'} if the database moved"
    )


def _on_read_only_media(database: str | None) -> bool:
    """A SQLite file that exists in a folder this process cannot write (a read-only mount, a container layer)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    path = Path(database)
    return path.is_file() and not os.access(path.parent, os.W_OK)


def _read_only_sqlite(path: Path) -> Engine:
    """The KB's SQLite file opened immutable: WAL mode would create -wal and -shm files beside it, which a
    read-only folder refuses, so nothing could be read. Writes fail with 'attempt to write a readonly database'."""
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:  # immutable mode would not see the writes still in the journal
        raise KnowledgeBaseError(
            f"{path} has unmerged writes in {wal.name} and sits in a read-only folder; open it once where it can "
            "be written (ragkit check --kb ...) before copying it to read-only media"
        )
    engine = create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&immutable=1&uri=true")
    event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA foreign_keys=ON"))
    return engine


def make_engine(url: str) -> Engine:
    """Create an engine. SQLite gets foreign keys, WAL and a busy timeout; Postgres a connect timeout and a
    liveness check on pooled connections. A missing driver is a DependencyError that names the extra."""
    parsed = parse_database_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if _on_read_only_media(parsed.database):
                return _read_only_sqlite(Path(parsed.database or ""))
            engine = create_engine(parsed, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # libpq keywords; the URL's own query parameters win
        defaults = {"connect_timeout": 10, "application_name": "ragkit"}
        connect_args = {k: v for k, v in defaults.items() if k not in parsed.query}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (ImportError, NoSuchModuleError) as exc:
        raise DependencyError(
            f"the database driver for {parsed.drivername!r} is not installed ({exc}); {PG_EXTRA_HINT}"
        ) from exc


def connect_error(engine: Engine, exc: OperationalError) -> KnowledgeBaseError:
    """Say which server could not be reached and what to do, without the password."""
    url = engine.url
    shown = url.render_as_string(hide_password=True)
    reason = driver_message(exc) or "unknown error"
    if url.get_backend_name() != "postgresql":
        return KnowledgeBaseError(f"cannot open the database {shown}: {reason}")
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "does not exist" in reason and url.database and f'"{url.database}"' in reason:
        todo = f"create it with: createdb -h {url.host or 'localhost'} -p {url.port or 5432} {url.database}"
    else:
        todo = "start the server or fix the URL (--db, RAGKIT_DB, or database_url in the KB's ragkit.toml)"
    return KnowledgeBaseError(f"cannot connect to PostgreSQL at {where} ({shown}): {reason}; {todo}")
