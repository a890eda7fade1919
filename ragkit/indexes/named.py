"""The documents a question names, searched first (rule DN, docs/design-notes.md).

A KB of many manuals answers "I want sort to print each distinct line only once. Which flag?" from du's manual
when du's chunks share more of the question's words than the entry of sort's `--unique` does. The question
names its document: "sort" is the name of sort.1.gz. A document is named when the question writes its name, the
file name up to its first dot ("ssh-keygen" of ssh-keygen.1.gz, "git-stash" of git-stash.1.gz), as a word, with
"-", "_" and a space alike ("git stash"). The names are read from the store once per write generation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ragkit.indexes.allowed import generation
from ragkit.indexes.sql_store import DocumentRow

_WORD = re.compile(r"[a-z0-9]+(?:[-_.+][a-z0-9]+)*")
T = TypeVar("T")
MIN_NAME = 2  # one-letter names ("c.md", "r.txt") match too many questions


def document_name(uri: str) -> str:
    """A document's name as a question would write it: its file name up to the first dot, lower case, "_" as
    "-" ("/usr/share/man/man1/pg_basebackup.1.gz" -> "pg-basebackup"); a URL's last path part likewise."""
    tail = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return tail.split(".", 1)[0].lower().replace("_", "-")


def written_names(question: str) -> set[str]:
    """What the question could name a document by: each word and each two neighbouring words joined by "-",
    lower case, "_" as "-", a trailing dot part dropped ("sort's" -> "sort"; "git stash" -> "git-stash")."""
    words = [w.replace("_", "-") for w in _WORD.findall(question.lower())]
    out = set(words) | {w.split(".", 1)[0] for w in words}
    out |= {f"{a}-{b}" for a, b in zip(words, words[1:], strict=False)}
    return out


class DocumentNames:
    """Document ids by name, valid for one store generation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._generation = -1
        self._ids: dict[str, tuple[int, ...]] = {}

    def _names(self) -> dict[str, tuple[int, ...]]:
        now = generation(self.engine)
        with self._lock:
            if now == self._generation:
                return self._ids
        ids: dict[str, list[int]] = {}
        with self.engine.connect() as conn:
            for doc_id, uri in conn.execute(select(DocumentRow.id, DocumentRow.uri)):
                name = document_name(uri)
                if len(name) >= MIN_NAME:
                    ids.setdefault(name, []).append(int(doc_id))
        with self._lock:
            self._ids, self._generation = {k: tuple(v) for k, v in ids.items()}, now
            return self._ids

    def named(self, question: str) -> tuple[int, ...]:
        """Ids of the documents the question names, sorted; () when it names none or names every document
        (then naming selects nothing)."""
        names = self._names()
        if len(names) < 2:
            return ()
        hit = sorted({i for w in written_names(question) for i in names.get(w, ())})
        every = sum(len(v) for v in names.values())
        return () if len(hit) >= every else tuple(hit)


def named_first(named: Sequence[T], rest: Sequence[T], key: Callable[[T], Hashable] = lambda x: x) -> list[T]:
    """`named` then the items of `rest` not in it (by `key(item)`), order kept."""
    seen = {key(x) for x in named}
    return [*named, *(x for x in rest if key(x) not in seen)]
