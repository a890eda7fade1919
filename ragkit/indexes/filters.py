"""Metadata filters: parsed from `FIELD OP VALUE` strings, compiled to a SQL SELECT of allowed chunk ids.

The SELECT is run once per query and its ids go into the FAISS search as an ID selector (and into the keyword
query as a subquery), so a filtered search returns k hits whenever k matching chunks exist, instead of
post-filtering a top-k that may hold none of them.

Grammar (several filters are ANDed):
    source=handbook/*      glob on the document uri (or its tail after any '/'); also source!=...
    doc=12 | doc in 3,4    document ids
    page>=2                page number (=, !=, <, <=, >, >=)
    section=Intro*         glob on the section title
    kind=Table             chunks holding an element of this kind (kind in Table,ListItem)
    ingested>=2026-01-01   when the document was ingested (ISO date or datetime, UTC)
    modified<2026-06-01    the file's modification time
    tenant=acme            shorthand for meta.tenant=acme
    meta.team=ops          document metadata (ingest --meta KEY=VALUE); numbers compare as numbers
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select

from ragkit.errors import ConfigError
from ragkit.indexes.sql_store import ChunkRow, DocumentRow, meta_number

_OPS = ("!=", ">=", "<=", "=", ">", "<")
_SPLIT = re.compile(r"^\s*([\w.\-]+)\s*(?:(!=|>=|<=|=|>|<)|\s(not in|in)\s)\s*(.*?)\s*$", re.IGNORECASE)
_FIELDS = ("source", "doc", "page", "section", "kind", "ingested", "modified", "tenant", "meta.KEY")

FilterSpec = str | Sequence[str] | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition. op is one of = != < <= > >= in 'not in'; value is a string (a tuple for in)."""

    field: str
    op: str
    value: str | tuple[str, ...]


def parse_filter(expr: str) -> Filter:
    """'page>=2' -> Filter('page', '>=', '2'). Raises ConfigError with the grammar on bad input."""
    m = _SPLIT.match(expr)
    if not m or not m.group(4):
        raise ConfigError(
            f"cannot read the filter {expr!r}; write FIELD OP VALUE with OP one of = != < <= > >= in, "
            f"e.g. 'source=docs/*.md', 'page>=2', 'kind in Table,ListItem'; fields: {', '.join(_FIELDS)}"
        )
    field, op, value = m.group(1).lower(), (m.group(2) or m.group(3)).lower(), m.group(4)
    if op in ("in", "not in"):
        return Filter(field, op, tuple(v.strip() for v in value.split(",") if v.strip()))
    return Filter(field, op, value)


def normalise(spec: FilterSpec) -> list[Filter]:
    """Accept a string, a list of strings, or a {field: value} mapping (a list value means 'in')."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [parse_filter(spec)]
    if isinstance(spec, Mapping):
        out = []
        for key, value in spec.items():
            if isinstance(value, list | tuple | set | frozenset):
                out.append(Filter(str(key).lower(), "in", tuple(str(v) for v in value)))
            else:
                out.append(Filter(str(key).lower(), "=", str(value)))
        return out
    return [f if isinstance(f, Filter) else parse_filter(f) for f in spec]


def _like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _compare(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    return {
        "=": col == value,
        "!=": col != value,
        "<": col < value,
        "<=": col <= value,
        ">": col > value,
        ">=": col >= value,
    }[op]


def _values(f: Filter) -> tuple[str, ...]:
    return f.value if isinstance(f.value, tuple) else (f.value,)


def _number(f: Filter, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"filter {f.field}{f.op}{text}: {text!r} is not a number") from None


def _when(f: Filter, text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"filter {f.field}: {text!r} is not an ISO date such as 2026-01-31") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _source_glob(pattern: str) -> ColumnElement[bool]:
    if pattern.startswith(("./", "../", "~")):
        pattern = str(Path(pattern).expanduser().resolve()) + ("/" if pattern.endswith("/") else "")
    if pattern.endswith("/"):
        pattern += "*"  # a folder means everything under it
    like = _like(pattern)
    uri = DocumentRow.uri
    if pattern.startswith("/") or "://" in pattern or pattern.startswith("sql:"):
        return uri.like(like, escape="\\")
    return or_(uri.like(like, escape="\\"), uri.like("%/" + like, escape="\\"))


def _condition(f: Filter) -> ColumnElement[bool]:
    values = _values(f)
    positive = f.op in ("=", "in")
    if f.op not in (*_OPS, "in", "not in"):
        raise ConfigError(f"unknown filter operator {f.op!r}")
    ordering = f.op in ("<", "<=", ">", ">=")

    def anyof(make: Any) -> ColumnElement[bool]:
        cond = or_(*(make(v) for v in values)) if values else false()
        return cond if positive else not_(cond)

    field = f.field
    if field in ("source", "uri", "path"):
        if ordering:
            raise ConfigError("source filters take = (glob), != or in")
        return anyof(_source_glob)
    if field in ("doc", "doc_id", "document"):
        if ordering:
            return _compare(ChunkRow.doc_id, f.op, int(_number(f, values[0])))
        return anyof(lambda v: ChunkRow.doc_id == int(_number(f, v)))
    if field == "page":
        if ordering:
            return _compare(ChunkRow.page, f.op, int(_number(f, values[0])))
        return anyof(lambda v: ChunkRow.page == int(_number(f, v)))
    if field == "section":
        if ordering:
            raise ConfigError("section filters take = (glob), != or in")
        return anyof(lambda v: ChunkRow.section.like(_like(v), escape="\\"))
    if field in ("kind", "kinds"):
        if ordering:
            raise ConfigError("kind filters take =, != or in")
        return anyof(lambda v: ("," + ChunkRow.kinds + ",").like(f"%,{_like(v)},%", escape="\\"))
    if field in ("ingested", "ingested_at", "date"):
        if f.op in ("in", "not in"):
            raise ConfigError("date filters take = != < <= > >=")
        return _compare(DocumentRow.ingested_at, f.op, _when(f, values[0]))
    if field in ("modified", "mtime"):
        if f.op in ("in", "not in"):
            raise ConfigError("date filters take = != < <= > >=")
        return _compare(DocumentRow.mtime, f.op, _when(f, values[0]).timestamp())
    key = "tenant" if field == "tenant" else field.removeprefix("meta.")
    if not key or not re.fullmatch(r"[\w\-]+", key):
        raise ConfigError(f"unknown filter field {f.field!r}; fields: {', '.join(_FIELDS)}")
    item = DocumentRow.meta[key]
    if ordering:
        return and_(item.is_not(None), _compare(meta_number(key), f.op, _number(f, values[0])))

    def meta_equals(v: str) -> ColumnElement[bool]:
        try:
            number = float(v)
        except ValueError:
            return item.as_string() == v
        return or_(item.as_string() == v, meta_number(key) == number)

    return anyof(meta_equals)


def compile_filters(spec: FilterSpec) -> Select[Any] | None:
    """A SELECT of the ids of chunks that pass every filter; None when there are no filters."""
    filters = normalise(spec)
    if not filters:
        return None
    stmt = select(ChunkRow.id).join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
    return stmt.where(and_(*(_condition(f) for f in filters)))
