"""Keyword retrieval (BM25-style) from the SQL side, kept in sync with the chunks table by the database itself.

SQLite: an FTS5 external-content table over `chunks.text`, maintained by triggers, so a chunk's keyword entry
commits or rolls back in the same transaction as the chunk (a killed ingest cannot leave them apart).
PostgreSQL: a generated `tsvector` column with a GIN index, ranked by `ts_rank_cd`.
"""

from __future__ import annotations

import operator
import re
from functools import reduce

from sqlalchemy import Select, bindparam, case, column, func, inspect, literal_column, or_, select, table, text
from sqlalchemy.engine import Engine

from ragkit.errors import KnowledgeBaseError
from ragkit.fsutil import storage_problem
from ragkit.protocols import KeywordIndex as KeywordIndex  # lived here before ragkit.protocols
from ragkit.textutil import STOPWORDS

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_TERMS = 32  # a pasted paragraph must not turn into a 500-term OR query


def query_terms(query: str) -> list[str]:
    """Distinct lower-case words of a query, stop words dropped (all words if only stop words remain)."""
    words = list(dict.fromkeys(m.group().lower() for m in _TOKEN.finditer(query)))
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:_MAX_TERMS]


# Chinese, Japanese and Korean write words without spaces, and both tokenizers read a whole run ("日本語のテキスト")
# as one token: a query word inside it never matched. Such query text is searched as overlapping character pairs
# (the usual CJK bigram retrieval) with LIKE over the chunks, a chunk scored by how many of the pairs it holds.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def cjk_grams(query: str) -> list[str]:
    """The distinct overlapping character pairs of the query's CJK runs (a run of one character stays whole)."""
    grams: list[str] = []
    for run in _CJK.findall(query):
        grams += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return list(dict.fromkeys(grams))[:_MAX_TERMS]


Scored = list[tuple[int, float]]  # (chunk id, score), best first


def _with_cjk(engine: Engine, query: str, k: int, allowed: Select | None, words: Scored) -> Scored:
    """The chunks holding the query's CJK pairs, most pairs first, then the word matches not among them."""
    grams = cjk_grams(query)
    if not grams or k <= 0:
        return words
    chunks = table("chunks", column("id"), column("text"))
    holds = [chunks.c.text.contains(g, autoescape=True) for g in grams]
    score = reduce(operator.add, [case((h, 1), else_=0) for h in holds])
    stmt = select(chunks.c.id, score).where(or_(*holds)).order_by(score.desc(), chunks.c.id).limit(int(k))
    if allowed is not None:
        stmt = stmt.where(chunks.c.id.in_(allowed))
    with engine.connect() as conn:
        pairs = [(int(r[0]), float(r[1])) for r in conn.execute(stmt)]
    seen = {i for i, _ in pairs}
    return [*pairs, *[(i, s) for i, s in words if i not in seen]][:k]


def _word_terms(query: str) -> list[str]:
    return [t for t in query_terms(query) if not _CJK.search(t)]  # CJK runs go to _with_cjk


class SqliteFts5:
    """FTS5 with the porter stemmer; score is -bm25 (FTS5's bm25 is lower-is-better)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.begin() as conn:
            existed = inspect(conn).has_table("chunks_fts")
            try:
                conn.execute(
                    text(
                        "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
                        "text, content='chunks', content_rowid='id', tokenize='porter unicode61')"
                    )
                )
            except Exception as exc:  # sqlite3.OperationalError wrapped by SQLAlchemy
                raise KnowledgeBaseError(
                    f"this SQLite build has no FTS5, so keyword search is unavailable ({exc}); "
                    "set retrieval.mode = 'dense' in ragkit.toml"
                ) from exc
            for stmt in (
                "CREATE TRIGGER IF NOT EXISTS chunks_fts_ai AFTER INSERT ON chunks BEGIN "
                "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
                "CREATE TRIGGER IF NOT EXISTS chunks_fts_ad AFTER DELETE ON chunks BEGIN "
                "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
                "CREATE TRIGGER IF NOT EXISTS chunks_fts_au AFTER UPDATE OF text ON chunks BEGIN "
                "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); "
                "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
            ):
                conn.execute(text(stmt))
            if not existed:
                # a KB made before keyword search existed: index the chunks it already holds
                conn.execute(text("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"))

    def search(self, query: str, k: int, allowed: Select | None = None) -> list[tuple[int, float]]:
        return _with_cjk(self.engine, query, k, allowed, self._words(query, k, allowed))

    def _words(self, query: str, k: int, allowed: Select | None) -> list[tuple[int, float]]:
        terms = _word_terms(query)
        if not terms or k <= 0:
            return []
        match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        fts = table("chunks_fts", column("rowid"))
        stmt = (
            select(fts.c.rowid, literal_column("-bm25(chunks_fts)"))
            .where(text("chunks_fts MATCH :match").bindparams(match=match))
            .order_by(text("bm25(chunks_fts)"))
            .limit(int(k))
        )
        if allowed is not None:
            # '+rowid': a plain `rowid IN (...)` is handed to FTS5 as a rowid constraint, which then runs the MATCH
            # once per allowed id (plan INDEX 0:=M1; 6x slower at 4,000 chunks, worse with size, bench/acl.py). The
            # unary plus keeps it out of the index: one MATCH, then a lookup in the materialised id list.
            stmt = stmt.where(literal_column("+chunks_fts.rowid").in_(allowed))
        with self.engine.connect() as conn:
            return [(int(r[0]), float(r[1])) for r in conn.execute(stmt)]

    def check(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)"))
        except Exception as exc:  # SQLITE_CORRUPT_VTAB: the FTS rows and the chunks table differ
            if storage_problem(exc) is None:
                return False
            # a KB on read-only media: FTS5's check is a write, so compare the rows each side holds instead
            with self.engine.connect() as conn:
                docs = conn.scalar(text("SELECT count(*) FROM chunks_fts_docsize"))
                return bool(conn.scalar(text("SELECT count(*) FROM chunks")) == docs)
        return True

    def rebuild(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')"))


class PostgresFullText:
    """PostgreSQL full-text search over a stored generated tsvector ('english' configuration)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # DDL only when something is missing: even CREATE INDEX IF NOT EXISTS takes a SHARE lock on chunks, so
        # every `ragkit search` opening the KB would wait for a running ingest's transaction to commit
        with engine.connect() as conn:
            has_column = "tsv" in {c["name"] for c in inspect(conn).get_columns("chunks")}
            has_index = conn.scalar(text("SELECT to_regclass('chunks_tsv_idx') IS NOT NULL"))
        if has_column and has_index:
            return
        with engine.begin() as conn:  # IF NOT EXISTS: another process may be doing the same right now
            conn.execute(
                text(
                    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector "
                    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
                )
            )
            conn.execute(text("CREATE INDEX IF NOT EXISTS chunks_tsv_idx ON chunks USING GIN (tsv)"))

    def search(self, query: str, k: int, allowed: Select | None = None) -> list[tuple[int, float]]:
        return _with_cjk(self.engine, query, k, allowed, self._words(query, k, allowed))

    def _words(self, query: str, k: int, allowed: Select | None) -> list[tuple[int, float]]:
        terms = _word_terms(query)
        if not terms or k <= 0:
            return []
        tsquery = func.to_tsquery("english", bindparam("q", " | ".join(terms)))  # plain words: a safe tsquery
        chunks = table("chunks", column("id"), column("tsv"))
        score = func.ts_rank_cd(chunks.c.tsv, tsquery)
        stmt = (
            select(chunks.c.id, score)
            .where(chunks.c.tsv.op("@@")(tsquery))
            .order_by(score.desc(), chunks.c.id)
            .limit(int(k))
        )
        if allowed is not None:
            stmt = stmt.where(chunks.c.id.in_(allowed))
        with self.engine.connect() as conn:
            return [(int(r[0]), float(r[1])) for r in conn.execute(stmt)]

    def check(self) -> bool:
        return True  # a generated column cannot drift from the text it is computed from

    def rebuild(self) -> None:
        return None


def keyword_index(engine: Engine) -> KeywordIndex:
    """The keyword index for this database's dialect (creating its tables/triggers if missing)."""
    name = engine.dialect.name
    if name == "sqlite":
        return SqliteFts5(engine)
    if name == "postgresql":
        return PostgresFullText(engine)
    raise KnowledgeBaseError(
        f"keyword search supports SQLite and PostgreSQL, not {name}; set retrieval.mode = 'dense' in ragkit.toml"
    )
