"""Rows of a SQL table or query (any SQLAlchemy URL) as documents.

Source spec: sql:<sqlalchemy url>#table=NAME&id=COLUMN&text=COL[,COL...][&meta=COL,...][&acl=COLUMN]
         or  sql:<sqlalchemy url>#query=SELECT ...&id=COLUMN&text=...
Each row becomes one document, uri "sql:<url without password>#table=NAME&id=<row id>"; text columns become
paragraphs (a column named title or name becomes the section title); meta columns are stored with the document.
An acl column holds who may read each row (ragkit.access: 'group:hr,user:alice'; empty: admins only).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ragkit.access import grant_tokens
from ragkit.connectors.base import SourceItem
from ragkit.connectors.parsing import SourceOptions, build_document, content_hash
from ragkit.errors import ParseError, SourceError, UsageError, driver_message
from ragkit.types import Document

_TITLE_COLUMNS = {"title", "name", "subject", "heading"}


def is_sql(source: str) -> bool:
    return source.startswith("sql:")


class SqlConnector:
    """A table or query; one document per row."""

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        url, _, fragment = spec[len("sql:") :].partition("#")
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(fragment, keep_blank_values=True).items()}
        self.table, self.query = params.get("table"), params.get("query")
        self.id_col = params.get("id")
        self.text_cols = [c for c in params.get("text", "").split(",") if c]
        self.meta_cols = [c for c in params.get("meta", "").split(",") if c]
        self.acl_col = params.get("acl") or None
        if not (self.table or self.query) or not self.id_col or not self.text_cols:
            raise SourceError(
                f"{spec}: a SQL source needs table= (or query=), id= and text= after '#', e.g. "
                "sql:sqlite:///shop.db#table=products&id=id&text=name,description&meta=price"
            )
        try:
            self.url = make_url(url)
        except ArgumentError as exc:
            raise SourceError(f"{url}: not a SQLAlchemy database URL ({exc})") from exc
        safe = self.url.render_as_string(hide_password=True)
        what = f"table={self.table}" if self.table else f"query={hashlib.sha1(self.query.encode()).hexdigest()[:12]}"
        self.scope: str | None = f"sql:{safe}#{what}&id="
        self.unsupported: list[str] = []

    def check(self) -> None:
        """Raise SourceError for a source that cannot exist: a SQLite file that is not there (connecting would
        create it empty)."""
        db = self.url.database
        local = self.url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:")
        if local and not Path(db).expanduser().is_file():
            raise SourceError(f"{self.url.render_as_string(hide_password=True)}: database file {db} not found")

    def _rows(self) -> list[dict]:
        from sqlalchemy import MetaData, Table, create_engine, select, text
        from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

        self.check()
        engine = create_engine(self.url)
        wanted = [self.id_col, *self.text_cols, *self.meta_cols, *([self.acl_col] if self.acl_col else [])]
        try:
            with engine.connect() as conn:
                if self.table:
                    table = Table(self.table, MetaData(), autoload_with=conn)
                    missing = [c for c in wanted if c not in table.c]
                    if missing:
                        have = ", ".join(table.c.keys())
                        raise SourceError(f"table {self.table} has no column {', '.join(missing)} (it has {have})")
                    stmt = select(*(table.c[c] for c in dict.fromkeys(wanted)))
                else:
                    stmt = text(self.query)
                rows = [dict(r) for r in conn.execute(stmt).mappings()]
        except NoSuchTableError as exc:
            raise SourceError(f"no table {self.table} in {self.url.render_as_string(hide_password=True)}") from exc
        except SQLAlchemyError as exc:
            what = f"table {self.table}" if self.table else "the query"
            where = self.url.render_as_string(hide_password=True)
            raise SourceError(f"cannot read {what} from {where}: {driver_message(exc)}") from exc
        finally:
            engine.dispose()
        if rows and any(c not in rows[0] for c in wanted):
            raise SourceError(f"the query does not return the columns {', '.join(wanted)}")
        return rows

    def items(self) -> Iterator[SourceItem]:
        for row in self._rows():
            uri = f"{self.scope}{row[self.id_col]}"
            # the acl column is part of the row's hash: a changed grant re-stores the row (its vectors are cached)
            cols = [*self.text_cols, *self.meta_cols, *([self.acl_col] if self.acl_col else [])]
            payload = json.dumps({c: row[c] for c in cols}, default=str, sort_keys=True).encode("utf-8")
            yield SourceItem(
                uri=uri,
                name=f"{self.table or 'query'}#{row[self.id_col]}",
                size=len(payload),
                mtime=0.0,
                read=lambda p=payload: p,  # type: ignore[misc]
                parse=lambda data, u=uri: self._parse(u, data),  # type: ignore[misc]
            )

    def _parse(self, uri: str, data: bytes) -> Document:
        record = json.loads(data)
        raw = [
            (str(record[c]), "Title" if c.lower() in _TITLE_COLUMNS else "NarrativeText", None)
            for c in self.text_cols
            if record.get(c) not in (None, "")
        ]
        doc = build_document(uri, raw, content_hash(data), {c: record.get(c) for c in self.meta_cols})
        if not doc.text:
            raise ParseError(f"{uri}: the row's text columns are empty")
        if self.acl_col:
            try:
                doc = replace(doc, grants=grant_tokens([str(record.get(self.acl_col) or "")]))
            except UsageError as exc:
                raise ParseError(f"{uri}: column {self.acl_col}: {exc}") from None
        return doc
