"""AccessControl: one knowledge base's grants, its readers' scopes and its audit log (`kb.acl`).

The facade asks `scope(principal)` before every read: on a KB with access control that principal goes into the
store's SQL (ragkit/indexes/acl.py); without one reads are refused; an admin's read is recorded and unrestricted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ragkit.access import AclDeclaration, Principal, default_actor, grant_tokens
from ragkit.errors import AccessError, UsageError
from ragkit.indexes import acl as sql_acl
from ragkit.store import Store
from ragkit.types import AclReport

_DOC_ID = re.compile(r"^(?:doc:)?(\d+)$")


class AccessControl:
    """Grants and scopes of one KB. enabled: security.access_control (deny by default)."""

    def __init__(self, store: Store, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        sql_acl.set_row_security(store.engine, enabled)  # PostgreSQL only; installs or drops the RLS policies

    def scope(self, principal: Principal | None, what: str | Sequence[str] = "read") -> Principal | None:
        """The principal a read runs as: None = unrestricted (no access control, or an admin, whose read is
        recorded). Raises AccessError when the KB is access-controlled and nobody is named."""
        if not self.enabled:
            return None
        if principal is None:
            raise AccessError(
                f"{self.store.paths.root} is access-controlled: say who reads (ragkit ... --as NAME --groups "
                "G1,G2, or ragkit.open(dir, principal=ragkit.Principal(NAME, groups=[...]))); admins add --admin"
            )
        if principal.admin:
            if not isinstance(what, str):  # a batch of queries: the first, and how many there were
                what = what[0] if len(what) == 1 else f"{len(what)} queries, the first: {what[0]}"
            sql_acl.audit(self.store.engine, principal.name, "admin-read", what[:500])
            return None
        return principal

    def check_writer(self, principal: Principal | None) -> None:
        """Writes (ingest, delete, reindex, repair) on an access-controlled KB are for its operator or an admin:
        a reader's view could otherwise name, or delete, documents it may not see."""
        if self.enabled and principal is not None and not principal.admin:
            raise AccessError(f"{principal.name} reads this knowledge base but may not change it; ask an admin")

    # -- grants -----------------------------------------------------------------------------------------

    def grant(self, targets: Sequence[str | Path], grants: Sequence[str], actor: str | None = None) -> AclReport:
        """Let `grants` (group:NAME, user:NAME, public) read the documents the targets name; no re-embedding."""
        return self._change(targets, grants, add=True, actor=actor)

    def revoke(self, targets: Sequence[str | Path], grants: Sequence[str], actor: str | None = None) -> AclReport:
        """Take `grants` away from the documents the targets name; the next read no longer sees them."""
        return self._change(targets, grants, add=False, actor=actor)

    def show(self, targets: Sequence[str | Path] = ()) -> dict[str, list[str]]:
        """{uri: grant tokens} of the documents the targets name (every document when none); [] = admins only."""
        uris = self.resolve(targets)[0] if targets else list(self.store.document_states())
        return sql_acl.grants_by_uri(self.store.engine, uris)

    def log(self, limit: int | None = None) -> list[dict[str, str]]:
        """The audit log, newest first: grants, revokes, ingest declarations and admin reads."""
        return sql_acl.audit_log(self.store.engine, limit)

    def ungranted(self) -> int:
        """Documents with no grant (on an access-controlled KB only admins read them)."""
        return sql_acl.ungranted(self.store.engine)

    def record_ingest(self, sources: Sequence[str | Path], declared: AclDeclaration, actor: str | None = None) -> None:
        """Audit what an ingest run declared about grants (--allow, the rules file), when it declared any."""
        if declared.declared:
            rules = "; ".join(f"{glob} -> {', '.join(g)}" for glob, g in declared.rules.rules)
            detail = f"allow {', '.join(declared.allow) or '(none)'}" + (f"; rules {rules}" if rules else "")
            sql_acl.audit(self.store.engine, actor or default_actor(), "ingest", ", ".join(map(str, sources)), detail)

    def resolve(self, targets: Sequence[str | Path]) -> tuple[list[str], list[str]]:
        """(document uris, unmatched targets): a target is a file, a folder, a uri glob or a document id (12 or
        doc:12; a file of that name wins)."""
        uris: list[str] = []
        unmatched: list[str] = []
        for target in targets:
            text = str(target).strip()
            m = _DOC_ID.match(text)
            if m and not Path(text).exists():
                uri = sql_acl.uri_of(self.store.engine, int(m.group(1)))
                found = [uri] if uri else []
            else:
                found = list(self.store.match_targets([text]).deleted)
            uris += found
            if not found:
                unmatched.append(text)
        return list(dict.fromkeys(uris)), unmatched

    def _change(
        self, targets: Sequence[str | Path], grants: Sequence[str], *, add: bool, actor: str | None
    ) -> AclReport:
        tokens = grant_tokens(grants)
        if not tokens:
            raise UsageError("name whom to grant or revoke: group:NAME, user:NAME or public")
        if not targets:
            raise UsageError("name the documents: a file, a folder, a uri glob or a document id")
        uris, unmatched = self.resolve(targets)
        changed = sql_acl.change_grants(self.store.engine, uris, tokens, add=add, actor=actor or default_actor())
        return AclReport(
            action="grant" if add else "revoke",
            grants=tokens,
            documents=tuple(uris),
            changed=changed,
            unmatched=tuple(unmatched),
        )
