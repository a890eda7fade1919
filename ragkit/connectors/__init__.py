"""Connectors turn sources into items to parse. Adding one is one file plus one line in CONNECTORS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragkit.connectors.base import Connector, SourceItem
from ragkit.connectors.files import FileConnector, discover_files, parse_file
from ragkit.connectors.parsing import SUPPORTED_SUFFIXES, SourceOptions
from ragkit.connectors.sql import SqlConnector, is_sql
from ragkit.connectors.web import WebConnector, is_other_url, is_url, unsupported_url

# (does this connector take the source?, build it); the first match wins, files last
CONNECTORS: list[tuple[Callable[[str], bool], Callable[[str, SourceOptions], Connector]]] = [
    (is_url, WebConnector),
    (is_other_url, unsupported_url),  # ftp://, file://: refused by name, not mangled into a missing path
    (is_sql, SqlConnector),
    (lambda source: True, FileConnector),
]


def open_source(source: str | Path, options: SourceOptions) -> Connector:
    """The connector for a source: a URL, a sql: spec, or a file/folder path."""
    text = str(source)
    for accepts, build in CONNECTORS:
        if accepts(text):
            return build(text, options)
    raise AssertionError("the file connector accepts everything")


__all__ = [
    "SUPPORTED_SUFFIXES",
    "Connector",
    "SourceOptions",
    "SourceItem",
    "discover_files",
    "open_source",
    "parse_file",
]
