"""Sphinx's markup as its pages show it, shared by the reStructuredText reader and MyST's (connectors/myst.py)."""

from __future__ import annotations

import re

# Sphinx's markup as its pages show it: a role with a title is its title, one without is its target as code
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`]+)`")
_RST_TITLED = re.compile(r"^(.*?)\s+<([^<>]+)>$", re.S)  # "a toolchain file <cmake-toolchains(7)>"
_RST_LITERAL = re.compile(r"``([^`]+)``")
# directives whose line says something, as Sphinx writes it; the others' lines go ("include", "note", "code-block")
_RST_VERSIONED = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}
_RST_DIRECTIVE = re.compile(r"^\.\.\s+([\w-]+)::[ \t]*(.*)$", re.M)


def role(m: re.Match[str]) -> str:
    """A role match's text as Sphinx shows it: its title, else its target as code ("~a.b" -> "`a.b`")."""
    content = m.group(1).strip()
    titled = _RST_TITLED.match(content)
    if titled is not None:
        return " ".join(titled.group(1).split())
    name = content.lstrip("~!")
    return f"`{name}`" if name else ""


def rst_inline(text: str) -> str:
    """The text of a reStructuredText paragraph as Sphinx shows it: ":command:`while`" -> "`while`",
    ":manual:`a toolchain file <cmake-toolchains(7)>`" -> "a toolchain file", "``BOTH``" -> "`BOTH`", ".. versionadded::
    3.24" -> "Added in version 3.24.", and the lines of directives that say nothing themselves (".. include::
    DEPRECATED.txt", ".. note::") left out."""

    def directive(m: re.Match[str]) -> str:
        name, arg = m.group(1).lower(), m.group(2).strip()
        if name == "tab" and arg:  # ".. tab:: Unix/macOS": the tab's label, above its body
            return f"{arg}:"
        label = _RST_VERSIONED.get(name)
        if label is None:
            return ""
        return f"{label} {arg}." if arg else ""

    text = _RST_DIRECTIVE.sub(directive, text)
    return _RST_LITERAL.sub(r"`\1`", _RST_ROLE.sub(role, text)).strip()
