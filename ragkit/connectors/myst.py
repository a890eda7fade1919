"""MyST, the Markdown that Sphinx projects write (pip, setuptools, many others), read as their pages show it.

CommonMark sees a MyST directive as a fenced code block whose info string is "{name} argument", and a role as
plain text: pip's "```{versionadded} 6.0```" held the only statement of when caching came, and its "{tab}"
blocks were the only place saying which path is Linux's and which macOS's; both were lost or left without
their label. Here a directive becomes what the page shows ("Added in version 6.0.", "Linux:" above the
tab's body, a note's own text), a role its title or its target as code, and a "(target)=" line nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ragkit.connectors.base import RawElement

_DIRECTIVE = re.compile(r"^\{([\w:-]+)\}\s*(.*)$")
# {ref}`text <target>`, {any}`--require-hashes`, {pypi}`certifi`
# not inside code: npm's "`${VARIABLE_NAME}`" is a shell variable in a code span, no role
_ROLE = re.compile(r"(?<![$`{])\{[\w:+-]+\}`([^`\n]+)`")
_TARGET = re.compile(r"^\(\s*[^()\s][^()]*\)=$")  # "(wheel-caching)=", a link target on its own line
_OPTION = re.compile(r"^:[\w-]+:.*$")  # ":caption: Example", a directive's option line
_VERSIONED = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}
_CODE = {"code-block", "code", "sourcecode", "code-cell", "pip-cli", "prompt"}
# directives whose body is no text of the page (a table of contents, a file pulled in, a picture)
_SILENT = {"toctree", "contents", "include", "literalinclude", "image", "figure", "raw", "mermaid", "graphviz"}
_TABS = {"tab", "tab-item"}


def is_directive(info: str) -> bool:
    """True for a fence info string that names a MyST directive ("{note}", "{versionadded} 6.0")."""
    return _DIRECTIVE.match(info.strip()) is not None


def myst_inline(text: str, role: Callable[[re.Match[str]], str]) -> str:
    """A paragraph's text with MyST roles read by `role` (the reStructuredText reader's: a title, or the target
    as code), and "" for a "(target)=" line."""
    if _TARGET.match(text.strip()):
        return ""
    return _ROLE.sub(role, text)


def directive_elements(
    info: str, body: str, markdown: Callable[[str], list[RawElement]], rst: Callable[[str], list[RawElement]]
) -> list[RawElement]:
    """The elements a MyST directive fence shows: `info` is its "{name} argument", `body` its content;
    `markdown` and `rst` parse a body written in those languages."""
    m = _DIRECTIVE.match(info.strip())
    if m is None:
        return [(body.rstrip("\n"), "CodeSnippet", None)] if body.strip() else []
    name, arg = m.group(1).lower(), m.group(2).strip()
    body = _without_options(body)
    if name in _SILENT:
        return []
    if name in _CODE:
        return [(body.rstrip("\n"), "CodeSnippet", None)] if body.strip() else []
    if name in _VERSIONED:
        said = " ".join(body.split())
        line = f"{_VERSIONED[name]} {arg}" + (f": {said}" if said else ".")
        return [(line, "NarrativeText", None)] if arg or said else []
    inner = rst(body) if name == "eval-rst" else markdown(body)
    if name in _TABS and arg:
        return [(f"{arg}:", "NarrativeText", None), *inner]
    return inner  # a note, a warning, an admonition, a tab set: the page shows their text


def _without_options(body: str) -> str:
    """A directive's body without its options: ":key: value" lines, or a "---" YAML block, at its start."""
    lines = body.splitlines()
    if lines and lines[0].strip() == "---" and "---" in (ln.strip() for ln in lines[1:]):
        end = next(i for i, ln in enumerate(lines[1:], 1) if ln.strip() == "---")
        lines = lines[end + 1 :]
    while lines and _OPTION.match(lines[0].strip()):
        lines = lines[1:]
    return "\n".join(lines)
