"""GNU Info manuals (`/usr/share/info/*.info.gz`, makeinfo's output), read as the text an Info reader shows.

An Info file is plain text cut into nodes by a 0x1f byte. Each node opens with a navigation line ("File:
diffutils.info,  Node: Overview,  Next: Comparison,  Up: Top") and may end in a "* Menu:" of links to its
subnodes; the file ends in a tag table of byte offsets, and a split manual's first file ("find.info") holds
only an "Indirect:" table naming its parts ("find.info-1", "find.info-2"). None of that is text a reader
reads: it is left out, and what remains is plain text whose headings makeinfo underlines ("10.1 'ls': List
directory contents" over a line of "="), which the text reader knows.
"""

from __future__ import annotations

import re

SPLIT_PART = re.compile(r"^(\.info)-\d+$")  # ".info-2", a part of a split manual ("find.info-2")
_NODE = re.compile(r"^File: [^,\n]+,\s+Node: [^\n]*$")
_TABLES = ("Tag Table:", "End Tag Table", "Indirect:", "Local Variables:")
_DIR_ENTRY = re.compile(r"^START-INFO-DIR-ENTRY$.*?^END-INFO-DIR-ENTRY$\n?|^INFO-DIR-SECTION .*$\n?", re.M | re.S)
_MENU = re.compile(r"^\* Menu:", re.M)
# "\0\b[index\0\b]", "\0\b[image src=...\0\b]": markup for the reader, whose NUL bytes would read as binary
_MARKER = re.compile(rb"\x00\x08\[[^\x00]*\x00\x08\]")


def without_markers(data: bytes) -> bytes:
    """An Info file's bytes without the reader's markers, so the rest decodes as text."""
    return _MARKER.sub(b"", data)


def info_text(text: str) -> str:
    """The readable text of an Info file: each node without its navigation line and its closing menu, and without
    the tag table, the indirect table and the Info directory entries."""
    nodes = []
    for node in text.replace("\r\n", "\n").split("\x1f"):
        node = node.strip("\n")
        if not node or node.startswith(_TABLES):
            continue
        first, _, rest = node.partition("\n")
        if _NODE.match(first):
            node = rest
        menu = _MENU.search(node)
        if menu is not None:  # a node's menu closes it: links to its subnodes, then the next node
            node = node[: menu.start()]
        nodes.append(_DIR_ENTRY.sub("", node).strip("\n"))
    return "\n\n".join(n for n in nodes if n.strip())
