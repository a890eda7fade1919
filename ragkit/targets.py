"""Targets: a file, a folder or a uri glob, as `ragkit delete`, `ragkit acl` and ACL rules files name documents."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path

from ragkit.errors import UsageError


def target_matcher(target: str) -> Callable[[str], bool]:
    """A delete target as a predicate on uris: the path itself or anything under it (relative to the working
    directory), or a glob as `--filter source=` reads it (case-insensitive; a relative glob also matches the
    tail of a uri after a '/'; a trailing '/' means everything under it)."""
    text = target.strip()
    if not text:
        raise UsageError(
            "an empty target names the working directory, i.e. everything under it; give a file, a folder "
            "or a uri glob (use . for the working directory on purpose)"
        )
    resolved = str(Path(text).expanduser().resolve())
    under = resolved.rstrip("/") + "/"
    pattern = text
    if pattern.startswith(("./", "../", "~")):
        pattern = str(Path(pattern).expanduser().resolve()) + ("/" if pattern.endswith("/") else "")
    if pattern.endswith("/"):
        pattern += "*"
    pattern = pattern.lower()
    anchored = pattern.startswith("/") or "://" in pattern or pattern.startswith("sql:")

    def match(uri: str) -> bool:
        if uri == resolved or uri.startswith(under):
            return True
        low = uri.lower()
        return fnmatchcase(low, pattern) or (not anchored and fnmatchcase(low, "*/" + pattern))

    return match
