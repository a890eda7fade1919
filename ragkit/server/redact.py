"""Error messages fit for HTTP clients: the server's own filesystem paths are replaced by neutral words.

The library's messages name paths because they speak to whoever runs ragkit ("ragkit ingest PATH --kb /srv/kb");
a client of the server is told the same thing without learning where the server keeps its files. The server log
keeps the original message.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

KB_WORD = "the knowledge base"
# a hidden path ends at the end of the message, a separator or a slash; what follows a slash is a path under it
_END = r"(?=$|[\s'\"`,;:()\[\]/])"
_UNDER = r"(?:/[^\s'\"`,;:()\[\]]*)?"


def _folder(get: Callable[[], Path]) -> Path | None:
    with contextlib.suppress(OSError, RuntimeError, KeyError):  # a deleted working folder, no home directory
        return get()
    return None


def hidden_paths(kb_root: Path) -> list[tuple[str, str]]:
    """(path, the words that replace it), longest path first: the KB directory as opened and resolved, the
    server's working folder and its home folder. "/" itself is never one (every path would match it)."""
    named = [
        (kb_root, KB_WORD),
        (_folder(kb_root.resolve), KB_WORD),
        (_folder(Path.cwd), "the server's folder"),
        (_folder(Path.home), "the server's home folder"),
    ]
    found: dict[str, str] = {}
    for path, words in named:
        if path is not None and path.is_absolute() and len(path.parts) > 1:
            found.setdefault(str(path).rstrip("/"), words)
    return sorted(found.items(), key=lambda item: -len(item[0]))


def redact(message: str, kb_root: Path) -> str:
    """`message` with the KB directory, the server's working and home folders, and every path under them, replaced
    by neutral words; "--kb PATH" becomes "--kb KB" (the CLI's own placeholder)."""
    for path, words in hidden_paths(kb_root):
        # not inside a longer path or a URL: nothing path-like just before it
        found = r"(?<![\w.~/:-])" + re.escape(path) + _END + _UNDER
        message = re.sub(r"--kb " + found, "--kb KB", message)
        message = re.sub(r"(?:(?:the )?knowledge base )?" + found, words, message)
    return message
