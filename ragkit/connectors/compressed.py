"""Compressed documents: Debian and many projects ship their docs gzipped ("news.md.gz"); such a file is read
as the file inside, within the size limit a plain file has."""

from __future__ import annotations

import zlib

from ragkit.errors import ParseError

GZIP = ".gz"


def gunzip(name: str, data: bytes, max_bytes: int) -> bytes:
    """The bytes inside a gzip file, at most `max_bytes` of them; raises ParseError for a file that is not gzip,
    is cut short, or would decompress past the limit (a small file can hold gigabytes of zeros)."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # 16: the gzip header and trailer
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ParseError(f"{name}: not a readable gzip file ({exc})") from exc
    if len(out) > max_bytes:
        raise ParseError(f"{name}: over the {max_bytes / 1e6:g} MB limit once decompressed (raise ingest.max_file_mb)")
    if not inflater.eof:
        raise ParseError(f"{name}: not a readable gzip file (it ends before its data does)")
    return out
