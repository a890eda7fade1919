"""Access control: who reads (a Principal) and who may read what (grants), as plain data.

A grant is a principal token: `user:NAME`, `group:NAME` or `public` (every reader who names themselves). A
document's grants are stored in SQL beside it (ragkit/indexes/acl.py) and compiled into every read's SQL, so
FAISS's ID selector and the keyword query only ever see chunks the reader may read. A knowledge base with
`security.access_control = true` is deny by default: a document without a grant is read by admins only.

Grants are declared at ingest (`--allow`, an ACL rules file, an ACL column of a SQL source) and changed later
without re-embedding (`ragkit acl grant|revoke`). What is not protected: anyone who can read the KB folder or
the database directly reads everything; access control is for readers who go through ragkit.
"""

from __future__ import annotations

import getpass
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragkit.errors import UsageError
from ragkit.targets import target_matcher

PUBLIC = "public"
_NAME = re.compile(r"^[\w][\w.@+\-]{0,127}$")  # letters, digits, _ . @ + - (emails, team-names, ids)
_KINDS = ("user", "group")


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise UsageError(
            f"{what} {name!r} is not a valid name; use letters, digits and _ . @ + - (at most 128 characters)"
        )
    return name


def grant_token(text: str) -> str:
    """'group:hr' / 'user:alice' / 'public' -> the stored token; anything else is a UsageError saying the form."""
    raw = text.strip()
    if raw.lower() in (PUBLIC, "group:public", "*"):
        return PUBLIC
    kind, sep, name = raw.partition(":")
    if not sep or kind.strip().lower() not in _KINDS:
        raise UsageError(f"cannot read the grant {text!r}; write group:NAME, user:NAME or public (e.g. group:hr)")
    return f"{kind.strip().lower()}:{_check_name(name, kind.strip().lower())}"


def grant_tokens(texts: Iterable[str]) -> tuple[str, ...]:
    """Several grants (each may be comma-separated: 'group:hr,user:bob'), parsed, sorted and deduplicated."""
    out = {grant_token(part) for text in texts for part in str(text).split(",") if part.strip()}
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who reads: a user name, the groups they belong to, and whether they read as an admin (everything).

    Admin reads are explicit and recorded in the KB's audit log; they are never the default.
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name(str(self.name), "user"))
        groups = [self.groups] if isinstance(self.groups, str) else list(self.groups)
        names = {_check_name(g, "group") for text in groups for g in str(text).split(",") if g.strip()}
        object.__setattr__(self, "groups", frozenset(names))

    @property
    def tokens(self) -> tuple[str, ...]:
        """The grant tokens this principal holds: user:NAME, group:G for each group, and public."""
        return (f"user:{self.name}", *sorted(f"group:{g}" for g in self.groups), PUBLIC)

    def __str__(self) -> str:
        groups = f" (groups {', '.join(sorted(self.groups))})" if self.groups else ""
        return f"{self.name}{groups}{' as admin' if self.admin else ''}"


def admin(name: str = "admin") -> Principal:
    """An admin principal: reads every document (recorded in the audit log)."""
    return Principal(name, admin=True)


@dataclass(frozen=True, slots=True)
class AclRules:
    """Path globs -> grants, read from an ACL rules file. A document gets the grants of every rule it matches.

    Globs read like `--filter source=` and `ragkit delete` targets: case-insensitive on the document's uri, a
    relative glob also matching the uri's tail after a '/', a trailing '/' meaning everything under a folder.
    """

    rules: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def grants_for(self, uri: str) -> tuple[str, ...] | None:
        """The grants of every rule matching `uri`; None when no rule does (nothing declared for it)."""
        found: set[str] = set()
        matched = False
        for pattern, grants in self.rules:
            if target_matcher(pattern)(uri):
                matched = True
                found.update(grants)
        return tuple(sorted(found)) if matched else None


def load_acl_rules(path: str | Path) -> AclRules:
    """Read an ACL rules file (TOML):

        [rules]
        "hr/" = ["group:hr", "user:alice"]
        "handbook/*.md" = ["public"]

    Raises UsageError naming the file and the problem.
    """
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no ACL rules file at {file}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the ACL rules file {file}: {exc}") from None
    table = data.get("rules")
    extra = sorted(set(data) - {"rules"})
    if not isinstance(table, dict) or extra:
        raise UsageError(
            f'{file}: write the rules as a [rules] table of "GLOB" = ["group:NAME", ...]'
            + (f" (unknown keys: {', '.join(extra)})" if extra else "")
        )
    rules = []
    for pattern, grants in table.items():
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            raise UsageError(f'{file}: rule {pattern!r} must be a list of grants such as ["group:hr"]')
        try:
            rules.append((str(pattern), grant_tokens(grants)))
        except UsageError as exc:
            raise UsageError(f"{file}: rule {pattern!r}: {exc}") from None
    return AclRules(tuple(rules))


@dataclass(frozen=True, slots=True)
class AclDeclaration:
    """What one ingest run says about grants: `--allow` for every document, plus rules by path.

    A document's own grants (a SQL source's ACL column) join them. When nothing is declared for a document
    its stored grants are kept (an unchanged or re-ingested file keeps what `ragkit acl grant` gave it).
    """

    allow: tuple[str, ...] = ()
    rules: AclRules = field(default_factory=AclRules)

    @property
    def declared(self) -> bool:
        return bool(self.allow or self.rules.rules)

    def grants_for(self, uri: str, own: Sequence[str] | None = None) -> tuple[str, ...] | None:
        """The grants this run gives the document at `uri`, or None (keep the stored ones)."""
        by_rule = self.rules.grants_for(uri)
        if by_rule is None and not self.allow and own is None:
            return None
        return tuple(sorted({*self.allow, *(by_rule or ()), *(own or ())}))


def principal_from(name: str | None, groups: Sequence[str] | str = (), *, admin: bool = False) -> Principal | None:
    """The CLI's --as NAME --groups G1,G2 --admin as a Principal (None when none of them is given)."""
    if name is None and not admin:
        if groups:
            raise UsageError("--groups needs --as NAME (whose groups they are)")
        return None
    return Principal(name or "admin", frozenset([groups] if isinstance(groups, str) else groups), admin=admin)


def default_actor() -> str:
    """Who the audit log names for a change made at this terminal: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
