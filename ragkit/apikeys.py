"""API keys (`kb.keys`): each key stands for a principal (ragkit.access) with a scope: read, write or admin.

`ragkit serve` maps the key of each request to its principal; the key itself is shown once, at creation,
and only its hash is stored in the KB's database. An admin-scope key reads as an admin (recorded in the
audit log); a write-scope key may also upload and delete; a read-scope key only reads.
"""

from __future__ import annotations

import secrets

from ragkit.access import Principal
from ragkit.errors import AccessError, UsageError
from ragkit.indexes import acl as sql_acl
from ragkit.indexes.keys import KeyRecord, add_key, find_key, list_keys, revoke_keys
from ragkit.store import Store

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "rk_"


class ApiKeys:
    """The API keys of one KB."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, name: str, groups: tuple[str, ...] | list[str] = (), scope: str = "read") -> tuple[str, KeyRecord]:
        """(the new key, its record). The key is not stored: show it to the user now, it cannot be read back."""
        if scope not in SCOPES:
            raise UsageError(f"unknown key scope {scope!r}; use one of {', '.join(SCOPES)}")
        principal = Principal(name, frozenset(groups))  # validates the names
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = add_key(self.store.engine, key, principal.name, tuple(sorted(principal.groups)), scope)
        sql_acl.audit(self.store.engine, principal.name, "key-create", record.prefix, f"scope {scope}")
        return key, record

    def list(self) -> list[KeyRecord]:
        """Every key ever created (revoked ones too), without the keys themselves."""
        return list_keys(self.store.engine)

    def revoke(self, name_or_prefix: str) -> int:
        """Revoke a principal's keys (by name) or one key (by its listed prefix). Returns how many."""
        n = revoke_keys(self.store.engine, name_or_prefix)
        if n:
            sql_acl.audit(self.store.engine, name_or_prefix, "key-revoke", name_or_prefix, f"{n} keys")
        return n

    def authenticate(self, key: str | None) -> tuple[Principal, str]:
        """(principal, scope) of a live key; AccessError (no key, or one that is unknown or revoked) otherwise.
        The message never says which."""
        record = find_key(self.store.engine, key) if key and key.startswith(KEY_PREFIX) else None
        if record is None:
            raise AccessError("a valid API key is required (Authorization: Bearer rk_...); ask an admin for one")
        principal = Principal(record.name, frozenset(record.groups), admin=record.scope == "admin")
        return principal, record.scope

    def any(self) -> bool:
        """Whether any live key exists (a server bound beyond loopback requires one)."""
        return any(not k.revoked for k in self.list())
