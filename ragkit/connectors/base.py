"""What a connector is: a small object that lists the items of one source and knows how to fetch them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ragkit.types import Document

RawElement = tuple[str, str, int | None]  # what a parser yields: (text, kind, page), kind "Title", "ListItem", ...


@dataclass(frozen=True)
class SourceItem:
    """One document-to-be of a source.

    size/mtime let ingest skip an unchanged item without fetching it (0 = unknown: always fetch, then compare
    content hashes). read() returns the raw bytes (raises ParseError when it cannot); parse(bytes) returns the
    Document (raises ParseError). Both run in ingest's parser thread.
    """

    uri: str
    name: str  # short name for messages and progress
    size: int
    mtime: float
    read: Callable[[], bytes]
    parse: Callable[[bytes], Document]
    meta: dict = field(default_factory=dict)
    # a local file and the options to parse it with: lets ingest hand the item to a parser process, which
    # cannot receive the read/parse closures (None: always parsed in the ingest process)
    local: tuple[Path, Any] | None = None
    parser: int = 1  # the version of the parser that reads it (a stored document read by an older one is re-read)
    # the parser version when only read() can tell which parser applies (a URL's content type picks its format)
    parser_read: Callable[[], int] | None = None


class Connector(Protocol):
    """Lists the items of one source. Adding a connector is one file plus one line in connectors/__init__.py."""

    scope: str | None  # stored uris starting with this belong to the source; --prune removes vanished ones
    unsupported: list[str]  # uris the source holds that ragkit cannot read (reported, not ingested)

    def items(self) -> Iterator[SourceItem]:
        """The source's items; raises SourceError if the source itself cannot be reached or listed."""
        ...
