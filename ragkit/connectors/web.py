"""http(s) URLs: one page or file per URL, with a timeout, a size limit and a content-type check."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, NoReturn

from ragkit.connectors.base import SourceItem
from ragkit.connectors.parsing import SUPPORTED_SUFFIXES, SourceOptions, parse_bytes, parser_version
from ragkit.errors import ParseError, SourceError
from ragkit.types import Document

CONTENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/csv": ".csv",
    "application/pdf": ".pdf",
    "application/json": ".json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_other_url(source: str) -> bool:
    """ftp://..., file://..., s3://...: a URL ragkit cannot fetch (which Path would mangle into 'ftp:/...')."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", source) is not None and not is_url(source)


def unsupported_url(source: str, options: SourceOptions | None = None) -> NoReturn:
    """The connector slot for is_other_url: refuses the source with a message naming its scheme."""
    scheme = source.split("://", 1)[0].lower()
    raise SourceError(f"{source}: unsupported URL scheme {scheme}; use http(s), or a local path for a file")


class WebConnector:
    """One URL. Fetched on every ingest; an unchanged body (same hash) is skipped before parsing."""

    def __init__(self, url: str, options: SourceOptions) -> None:
        self.url = url
        self.options = options
        self.max_bytes = options.max_bytes
        self.timeout = options.timeout_s
        self.scope: str | None = None
        self.unsupported: list[str] = []
        self._suffix = ""

    def items(self) -> Iterator[SourceItem]:
        yield SourceItem(
            uri=self.url, name=self.url, size=0, mtime=0.0, read=self.fetch, parse=self.parse, parser_read=self.parser
        )

    def parser(self) -> int:
        """The version of the parser for the body fetched last (its content type decides the format)."""
        return parser_version(self._suffix, self.options)

    def fetch(self) -> bytes:
        """GET the URL; raises ParseError for HTTP errors, timeouts, oversized or non-document responses."""
        from ragkit._version import __version__

        req = urllib.request.Request(
            self.url,
            headers={"User-Agent": f"ragkit/{__version__}", "Accept": ", ".join(CONTENT_TYPES) + ", */*;q=0.1"},
        )
        # the socket timeout bounds each wait for bytes, not the whole body: a server that sends a few bytes
        # every second would hold ingest for as long as it likes without this deadline
        deadline = time.monotonic() + self.timeout
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                ctype = resp.headers.get_content_type()
                suffix = CONTENT_TYPES.get(ctype)
                if suffix is None:  # a generic type: trust a known extension in the URL's path
                    ext = PurePosixPath(urllib.parse.urlparse(resp.geturl()).path).suffix.lower()
                    suffix = ext if ext in SUPPORTED_SUFFIXES else None
                if suffix is None:
                    raise ParseError(f"{self.url}: content type {ctype} is not a document ragkit reads")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise ParseError(f"{self.url}: {int(declared) / 1e6:.1f} MB is over the size limit")
                data = self._read_body(resp, deadline)
        except urllib.error.HTTPError as exc:
            raise ParseError(f"{self.url}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ParseError(f"{self.url}: no answer within {self.timeout:g} s") from exc
            raise ParseError(f"{self.url}: cannot fetch ({exc.reason})") from exc
        except TimeoutError as exc:
            raise ParseError(f"{self.url}: no answer within {self.timeout:g} s") from exc
        except OSError as exc:
            raise ParseError(f"{self.url}: cannot fetch ({exc})") from exc
        if len(data) > self.max_bytes:
            raise ParseError(f"{self.url}: body is over the {self.max_bytes / 1e6:.3g} MB size limit")
        self._suffix = suffix
        return data

    def _read_body(self, resp: Any, deadline: float) -> bytes:
        """The body, up to max_bytes + 1; raises ParseError once the fetch passes its deadline."""
        parts: list[bytes] = []
        size = 0
        while size <= self.max_bytes:
            part = resp.read1(min(1 << 16, self.max_bytes + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
            if time.monotonic() > deadline:
                raise ParseError(f"{self.url}: the body did not arrive within {self.timeout:g} s")
        return b"".join(parts)

    def parse(self, data: bytes) -> Document:
        return parse_bytes(
            data, uri=self.url, name=self.url, suffix=self._suffix, options=self.options, meta={"size": len(data)}
        )
