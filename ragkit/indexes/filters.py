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
    ingested>=2026-01-01   when the document was ingested (ISO date or datetime, UTC; a trailing Z is fine)
    modified<2026-06-01    the file's modification time
    tenant=acme            shorthand for meta.tenant=acme
    meta.team=ops          document metadata (ingest --meta KEY=VALUE); numbers compare as numbers

Any other field is a UsageError naming the fields (a typo such as `sourse=*.pdf` must not silently become a
metadata key that matches nothing); so are numbers that SQL cannot hold (inf, nan, past 64-bit integers).
Errors quote the filter as it was typed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, case, cast, false, not_, null, or_, select

from ragkit.errors import UsageError
from ragkit.indexes.sql_store import ChunkRow, DocumentRow

_OPS = ("!=", ">=", "<=", "=", ">", "<")
_SPLIT = re.compile(r"^\s*([\w.\-]+)\s*(?:(!=|>=|<=|=|>|<)|\s(not in|in)\s)\s*(.*?)\s*$", re.IGNORECASE)
_FIELDS = ("source", "doc", "page", "section", "kind", "ingested", "modified", "tenant", "meta.KEY")
_ALIASES = ("uri", "path", "doc_id", "document", "kinds", "ingested_at", "date", "mtime")
_INT64 = (-(2**63), 2**63 - 1)  # what an SQLite INTEGER (and a PostgreSQL BIGINT) holds

FilterSpec = str | Sequence[str] | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition. op is one of = != < <= > >= in 'not in'; value is a string (a tuple for in).

    text: the filter as the user wrote it, quoted in error messages (not part of equality)."""

    field: str
    op: str
    value: str | tuple[str, ...]
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.text:
            return self.text
        value = ",".join(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.field} {self.op} {value}" if self.op[0].isalpha() else f"{self.field}{self.op}{value}"


def parse_filter(expr: str) -> Filter:
    """'page>=2' -> Filter('page', '>=', '2'). Raises UsageError with the grammar on bad input."""
    m = _SPLIT.match(expr)
    if not m or not m.group(4):
        raise UsageError(
            f"cannot read the filter {expr!r}; write FIELD OP VALUE with OP one of = != < <= > >= in, "
            f"e.g. 'source=docs/*.md', 'page>=2', 'kind in Table,ListItem'; fields: {', '.join(_FIELDS)}"
        )
    field, op, value = m.group(1).lower(), (m.group(2) or m.group(3)).lower(), m.group(4)
    text = expr.strip()
    if op in ("in", "not in"):
        return Filter(field, op, tuple(v.strip() for v in value.split(",") if v.strip()), text)
    return Filter(field, op, value, text)


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
                values = tuple(str(v) for v in value)
                out.append(Filter(str(key).lower(), "in", values, f"{key} in {','.join(values)}"))
            else:
                out.append(Filter(str(key).lower(), "=", str(value), f"{key}={value}"))
        return out
    return [f if isinstance(f, Filter) else parse_filter(f) for f in spec]


# a decimal number, as JSON numbers and numeric metadata strings ("5", "-2.5", "1e3") are written
_NUMBER_RE = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def meta_number(key: str) -> ColumnElement[float]:
    """documents.meta[key] as a float, NULL where it is absent or not a number, on both backends.

    A bare CAST fails the whole query on Postgres at the first non-numeric value and turns it into 0 on
    SQLite; the CASE only casts what looks like a number (SQLite's REGEXP is SQLAlchemy's re.search).
    """
    raw = DocumentRow.meta[key].as_string()  # text on both (SQLite: CAST(json_extract(...) AS VARCHAR))
    return case((raw.regexp_match(_NUMBER_RE), cast(raw, Float)), else_=null())


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
    """A finite number (metadata compares as REAL)."""
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"filter {str(f)!r}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise UsageError(f"filter {str(f)!r}: {text!r} is not a finite number")
    return number


def _integer(f: Filter, text: str, what: str) -> int:
    """A whole number within SQL's 64-bit INTEGER range (document ids, page numbers)."""
    try:
        number = int(text)
    except ValueError:
        real = _number(f, text)
        if not real.is_integer():
            raise UsageError(f"filter {str(f)!r}: {text!r} is not {what}") from None
        number = int(real)
    if not _INT64[0] <= number <= _INT64[1]:
        raise UsageError(f"filter {str(f)!r}: {text!r} is out of range for {what}")
    return number


def _when(f: Filter, text: str) -> datetime:
    utc = text[-1:] in ("Z", "z")  # 2026-06-01Z, 2026-06-01T12:00Z: UTC, as the naive form already means
    try:
        when = datetime.fromisoformat(text[:-1] if utc else text)
    except ValueError:
        raise UsageError(f"filter {str(f)!r}: {text!r} is not an ISO date such as 2026-01-31") from None
    if utc and when.tzinfo:
        raise UsageError(f"filter {str(f)!r}: {text!r} has two time zones")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _unknown_field(f: Filter) -> str:
    """'unknown filter field ...; fields: ...', with the nearest field when the name looks like a typo."""
    near = difflib.get_close_matches(f.field, [*_FIELDS[:-1], *_ALIASES], n=1, cutoff=0.6)
    guesses = [*near, *([] if f.field.startswith("meta.") else [f"meta.{f.field}"])]
    hint = f" (did you mean {' or '.join(guesses)}?)" if guesses else ""
    return f"unknown filter field {f.field!r}{hint}; fields: {', '.join(_FIELDS)}"


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
        raise UsageError(f"filter {str(f)!r}: unknown operator {f.op!r}")
    ordering = f.op in ("<", "<=", ">", ">=")

    def anyof(make: Any) -> ColumnElement[bool]:
        cond = or_(*(make(v) for v in values)) if values else false()
        return cond if positive else not_(cond)

    field = f.field
    if field in ("source", "uri", "path"):
        if ordering:
            raise UsageError(f"filter {str(f)!r}: source filters take = (glob), != or in")
        return anyof(_source_glob)
    if field in ("doc", "doc_id", "document"):
        if ordering:
            return _compare(ChunkRow.doc_id, f.op, _integer(f, values[0], "a document id"))
        return anyof(lambda v: ChunkRow.doc_id == _integer(f, v, "a document id"))
    if field == "page":
        if ordering:
            return _compare(ChunkRow.page, f.op, _integer(f, values[0], "a page number"))
        return anyof(lambda v: ChunkRow.page == _integer(f, v, "a page number"))
    if field == "section":
        if ordering:
            raise UsageError(f"filter {str(f)!r}: section filters take = (glob), != or in")
        return anyof(lambda v: ChunkRow.section.like(_like(v), escape="\\"))
    if field in ("kind", "kinds"):
        if ordering:
            raise UsageError(f"filter {str(f)!r}: kind filters take =, != or in")
        return anyof(lambda v: ("," + ChunkRow.kinds + ",").like(f"%,{_like(v)},%", escape="\\"))
    if field in ("ingested", "ingested_at", "date"):
        if f.op in ("in", "not in"):
            raise UsageError(f"filter {str(f)!r}: date filters take = != < <= > >=")
        return _compare(DocumentRow.ingested_at, f.op, _when(f, values[0]))
    if field in ("modified", "mtime"):
        if f.op in ("in", "not in"):
            raise UsageError(f"filter {str(f)!r}: date filters take = != < <= > >=")
        return _compare(DocumentRow.mtime, f.op, _when(f, values[0]).timestamp())
    key = "tenant" if field == "tenant" else field.removeprefix("meta.") if field.startswith("meta.") else ""
    if not key or not re.fullmatch(r"[\w\-]+", key):
        raise UsageError(_unknown_field(f))
    item = DocumentRow.meta[key]
    if ordering:
        return and_(item.is_not(None), _compare(meta_number(key), f.op, _number(f, values[0])))

    def meta_equals(v: str) -> ColumnElement[bool]:
        try:
            number = float(v)
        except ValueError:
            return item.as_string() == v
        if not math.isfinite(number):
            return item.as_string() == v
        return or_(item.as_string() == v, meta_number(key) == number)

    return anyof(meta_equals)


def compile_filters(spec: FilterSpec, readable: Select[Any] | None = None) -> Select[Any] | None:
    """A SELECT of the ids of chunks that pass every filter and whose document id `readable` selects (the
    reader's grants, ragkit/indexes/acl.py); None when there are neither filters nor grants to respect."""
    filters = normalise(spec)
    if not filters and readable is None:
        return None
    conditions = [_condition(f) for f in filters]
    if readable is not None:
        conditions.append(ChunkRow.doc_id.in_(readable))
    stmt = select(ChunkRow.id).join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
    return stmt.where(and_(*conditions))
