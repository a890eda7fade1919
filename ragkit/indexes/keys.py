"""API keys in SQL: only a SHA-256 of each key is stored (keys are 256 random bits, so a fast hash is enough:
there is nothing to brute-force), with the principal it stands for and its scope."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, String, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from ragkit.indexes.sql_store import Base, Id


class KeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)  # the principal's user name
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart in lists
    groups: Mapped[str] = mapped_column(String(2000), default="")  # comma-separated
    scope: Mapped[str] = mapped_column(String(8))  # read | write | admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One stored key, without the key itself."""

    id: int
    name: str
    prefix: str
    groups: tuple[str, ...]
    scope: str
    created_at: str
    revoked: bool


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _ensure(engine: Engine) -> None:
    KeyRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]


def _record(r: KeyRow) -> KeyRecord:
    when = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
    groups = tuple(g for g in r.groups.split(",") if g)
    return KeyRecord(r.id, r.name, r.prefix, groups, r.scope, when.isoformat(timespec="seconds"), r.revoked)


def add_key(engine: Engine, key: str, name: str, groups: tuple[str, ...], scope: str) -> KeyRecord:
    """Store the hash of a new key."""
    _ensure(engine)
    with Session(engine) as s, s.begin():
        row = KeyRow(
            name=name,
            key_hash=key_hash(key),
            prefix=key[:10],
            groups=",".join(groups),
            scope=scope,
            created_at=datetime.now(UTC),
        )
        s.add(row)
        s.flush()
        return _record(row)


def find_key(engine: Engine, key: str) -> KeyRecord | None:
    """The live (not revoked) key with this value, or None."""
    _ensure(engine)
    with Session(engine) as s:
        row = s.scalar(select(KeyRow).where(KeyRow.key_hash == key_hash(key), KeyRow.revoked.is_(False)))
        return _record(row) if row is not None else None


def list_keys(engine: Engine) -> list[KeyRecord]:
    _ensure(engine)
    with Session(engine) as s:
        return [_record(r) for r in s.scalars(select(KeyRow).order_by(KeyRow.id))]


def revoke_keys(engine: Engine, name_or_prefix: str) -> int:
    """Revoke every live key of this principal name, or the key starting with this prefix. Returns how many."""
    _ensure(engine)
    match = (KeyRow.name == name_or_prefix) | (KeyRow.prefix == name_or_prefix[:10])
    with Session(engine) as s, s.begin():
        result = s.execute(update(KeyRow).where(match, KeyRow.revoked.is_(False)).values(revoked=True))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
