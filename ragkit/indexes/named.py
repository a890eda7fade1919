"""The documents a question names, searched first (rule DN, docs/design-notes.md).

A KB of many manuals answers "I want sort to print each distinct line only once. Which flag?" from du's manual
when du's chunks share more of the question's words than the entry of sort's `--unique` does. The question
names its document: "sort" is the name of sort.1.gz. A document is named when the question writes its name, the
file name up to its first dot ("ssh-keygen" of ssh-keygen.1.gz, "git-stash" of git-stash.1.gz), as a word, with
"-", "_" and a space alike ("git stash"). The names are read from the store once per write generation.

Rule DN2: a manual page is also named by the other commands its NAME section lists ("bzip2, bunzip2 - ... bzcat -
..."), and a name the question writes only as an ordinary noun ("my script", "the column names") names nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ragkit.indexes.allowed import generation
from ragkit.indexes.sql_store import ChunkRow, DocumentRow

_WORD = re.compile(r"[a-z0-9]+(?:[-_.+][a-z0-9]+)*")
T = TypeVar("T")
MIN_NAME = 2  # one-letter names ("c.md", "r.txt") match too many questions
# a name right after one of these, or one word after ("my monitoring script"), is an ordinary noun...
_DETERMINERS = frozenset("the a an my your our their his her its some each every any this that these those".split())
# ...unless the program is meant: "an xxd flag", "the ls command", "a flock(1) option"
_PROGRAM_WORDS = frozenset(
    "flag flags option options switch switches command commands manual page man tool utility program binary "
    "invocation call process output run version argument arguments".split()
)
# a NAME section as the man reader writes it: "NAME\n\nbzip2, bunzip2 - a block-sorting ... bzcat - decompresses ..."
_NAME_SECTION = "NAME"
_NAMES_BEFORE_DASH = re.compile(r"((?:[\w.+-]+,\s*)*[\w.+-]+)\s+[-\u2013\u2014]+\s")
_COMMAND = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def document_name(uri: str) -> str:
    """A document's name as a question would write it: its file name up to the first dot, lower case, "_" as
    "-" ("/usr/share/man/man1/pg_basebackup.1.gz" -> "pg-basebackup"); a URL's last path part likewise."""
    tail = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return tail.split(".", 1)[0].lower().replace("_", "-")


def _words(question: str) -> list[str]:
    return [w.replace("_", "-") for w in _WORD.findall(question.lower())]


def _spans(words: list[str]) -> Iterator[tuple[str, int, int]]:
    """(name, first word, end) for each way the words can write a name: a word, the word before its first dot,
    two neighbouring words joined by "-"."""
    for i, word in enumerate(words):
        yield word, i, i + 1
        yield word.split(".", 1)[0], i, i + 1
        if i + 1 < len(words):
            yield f"{word}-{words[i + 1]}", i, i + 2


def written_names(question: str) -> set[str]:
    """What the question could name a document by: each word and each two neighbouring words joined by "-",
    lower case, "_" as "-", a trailing dot part dropped ("sort's" -> "sort"; "git stash" -> "git-stash")."""
    return {name for name, _, _ in _spans(_words(question))}


def noun_names(question: str) -> set[str]:
    """The names of `written_names` the question writes only as ordinary nouns: each time right after a determiner
    or one word after one ("my script", "the backup script"), with no program word after ("the ls command")."""
    words = _words(question)
    noun: dict[str, bool] = {}
    for name, start, end in _spans(words):
        after = words[end : end + 2]
        if after and after[0].isdigit():  # a section number: "flock(1)"
            after = after[1:]
        as_noun = any(w in _DETERMINERS for w in words[max(0, start - 2) : start])
        plain = as_noun and not (after and after[0] in _PROGRAM_WORDS)
        noun[name] = noun.get(name, True) and plain
    return {name for name, only in noun.items() if only}


def listed_commands(first_chunk: str) -> set[str]:
    """The commands a manual page's NAME section lists ("bzip2, bunzip2 - ... bzcat - ..." -> bzip2, bunzip2,
    bzcat), lower case, "_" as "-"; empty for any other text."""
    head, _, body = first_chunk.partition("\n")
    if head.strip() != _NAME_SECTION:
        return set()
    out = set()
    for m in _NAMES_BEFORE_DASH.finditer(body.strip().split("\n\n", 1)[0]):
        for name in m.group(1).split(","):
            name = name.strip().lower().replace("_", "-")
            if len(name) >= MIN_NAME and _COMMAND.fullmatch(name):
                out.add(name)
    return out


class DocumentNames:
    """Document ids by name, valid for one store generation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._generation = -1
        self._ids: dict[str, tuple[int, ...]] = {}
        self._documents = 0  # how many documents the names name, read with them

    def _names(self) -> tuple[dict[str, tuple[int, ...]], int]:
        """Document ids by name, and how many documents that is."""
        now = generation(self.engine)
        with self._lock:
            if now == self._generation:
                return self._ids, self._documents
        ids: dict[str, set[int]] = {}
        with self.engine.connect() as conn:
            # each document's first chunk through the doc_id index: a scan of the chunks' texts took 200 ms at
            # 200,000 chunks, this 20 ms
            first_ids = select(func.min(ChunkRow.id)).group_by(ChunkRow.doc_id)
            firsts = select(ChunkRow.doc_id, ChunkRow.text).where(
                ChunkRow.id.in_(first_ids), ChunkRow.ord == 0, ChunkRow.section == _NAME_SECTION
            )
            listed = {int(doc_id): listed_commands(text) for doc_id, text in conn.execute(firsts)}
            for doc_id, uri in conn.execute(select(DocumentRow.id, DocumentRow.uri)):
                for name in {document_name(uri), *listed.get(int(doc_id), ())}:
                    if len(name) >= MIN_NAME:
                        ids.setdefault(name, set()).add(int(doc_id))
        documents = len({i for v in ids.values() for i in v})
        with self._lock:
            self._ids, self._documents = {k: tuple(sorted(v)) for k, v in ids.items()}, documents
            self._generation = now
            return self._ids, self._documents

    def named(self, question: str) -> tuple[int, ...]:
        """Ids of the documents the question names, sorted; () when it names none or names every document
        (then naming selects nothing)."""
        names, documents = self._names()
        if documents < 2:  # a KB of one document (its manual may list several commands) is searched as before
            return ()
        written = written_names(question) - noun_names(question)
        hit = sorted({i for w in written for i in names.get(w, ())})
        return () if len(hit) >= documents else tuple(hit)


def named_first(named: Sequence[T], rest: Sequence[T], key: Callable[[T], Hashable] = lambda x: x) -> list[T]:
    """`named` then the items of `rest` not in it (by `key(item)`), order kept."""
    seen = {key(x) for x in named}
    return [*named, *(x for x in rest if key(x) not in seen)]
