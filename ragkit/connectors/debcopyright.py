"""Debian's machine-readable copyright files (`/usr/share/doc/zlib1g/copyright`), read as their stanzas say it.

The format (https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) is a series of stanzas of
"Field: value" lines; a value goes on in lines that start with a space, where " ." is a blank line. A header
stanza names the work ("Upstream-Name: zlib"), each "Files:" stanza says who holds the copyright of which files
under which licence, and a stanza with only "License: Zlib" and its text gives that licence once for all. Read as
plain text, a licence came out as one paragraph of indented lines with " ." between them; here each stanza is one
element, a standalone licence is a section titled "License: Zlib", and its text reads as paragraphs.
"""

from __future__ import annotations

import re

from ragkit.connectors.base import RawElement
from ragkit.connectors.document import SECTION

_FORMAT = re.compile(r"\AFormat:\s*https?://(?:www\.)?debian\.org/doc/packaging-manuals/copyright-format/", re.I)
_STANZAS = re.compile(r"\n(?:[ \t]*\n)+")
_FIELD = re.compile(r"^([!-9;-~][!-9;-~]*):[ \t]*(.*)$")  # a field name is printable ASCII without ":" or space
_LISTS = {"files", "files-excluded", "files-included"}  # values that are lists of patterns, one line or several


def is_dep5(text: str) -> bool:
    """True when `text` is a machine-readable Debian copyright file (its first line names the format)."""
    return bool(_FORMAT.match(text.lstrip("\ufeff")))


def dep5_elements(text: str) -> list[RawElement]:
    """One element per stanza ("Files: *\\nCopyright: 1995-2022 Jean-loup Gailly\\nLicense: Zlib"), a standalone
    licence as a title ("License: Zlib") over its text's paragraphs, and any stanza's comment as paragraphs."""
    out: list[RawElement] = []
    section: str | None = None
    for stanza in _STANZAS.split(text.replace("\r\n", "\n").lstrip("\ufeff")):
        fields = _fields(stanza)
        if not fields:
            continue
        names = {name.lower() for name, _ in fields}
        standalone = "license" in names and not names & {"files", "format", "upstream-name"}
        if standalone:
            name, body = _first_line(dict((n.lower(), v) for n, v in fields)["license"])
            section = f"License: {name}"
            out.append((section, "Title", None))
            out.extend((p, "NarrativeText", None) for p in _paragraphs(body))
            rest = [(n, v) for n, v in fields if n.lower() != "license"]
        else:
            if section is not None:  # a Files stanza after a licence's text is not part of that licence
                out.append(("", SECTION, None))
                section = None
            rest = fields
        lines: list[str] = []
        texts: list[str] = []
        for name, value in rest:
            key = name.lower()
            if key == "format":
                continue
            if key in _LISTS:
                lines.append(f"{name}: {' '.join(value.split())}")
            elif key == "copyright":  # one holder a line
                lines.append(f"{name}: " + "\n".join(ln.strip() for ln in value.strip().split("\n") if ln.strip()))
            elif "\n" not in value:
                lines.append(f"{name}: {value}")
            elif key == "license":  # its short name, then the licence's text ("License: GPL-2+" over the GPL's words)
                head, body = _first_line(value)
                lines.append(f"{name}: {head}")
                texts.extend(_paragraphs(body))
            else:  # formatted text: "Comment: ..." over paragraphs
                paras = _paragraphs(value)
                texts.extend([f"{name}: {paras[0]}", *paras[1:]] if paras else [])
        if lines:
            out.append(("\n".join(lines), "NarrativeText", None))
        out.extend((t, "NarrativeText", None) for t in texts)
    return out


def _fields(stanza: str) -> list[tuple[str, str]]:
    """A stanza's (name, value) pairs; a value keeps its continuation lines, indented, after a newline."""
    fields: list[tuple[str, str]] = []
    for line in stanza.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        elif line.startswith("#"):
            continue  # a comment line
        else:
            m = _FIELD.match(line)
            if m:
                fields.append((m.group(1), m.group(2).strip()))
    return fields


def _first_line(value: str) -> tuple[str, str]:
    """A value's first line (a licence's short name, a comment's opening words) and the lines after it."""
    head, _, body = value.partition("\n")
    return head.strip(), body


def _paragraphs(body: str) -> list[str]:
    """Continuation lines as paragraphs: " ." is a blank line, and a paragraph's lines are joined."""
    paras: list[list[str]] = [[]]
    for line in body.split("\n"):
        stripped = line.strip()
        if stripped == ".":
            paras.append([])
        elif stripped:
            paras[-1].append(stripped)
    return [" ".join(p) for p in paras if p]
