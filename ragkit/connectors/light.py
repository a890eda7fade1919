"""Light parsers for the plain formats: Markdown (markdown-it-py), HTML (BeautifulSoup + lxml), plain text.

unstructured runs spaCy on every element, about 3.4 s for a 210k-character Markdown or HTML file where these
take about 10 ms; when parsing rather than embedding bounds ingest (always on a GPU) that decides the
throughput. They yield the same element kinds (Title, NarrativeText, ListItem, Table, CodeSnippet), so
sections and chunking behave the same. `ingest.parser = "unstructured"` routes everything through
unstructured instead. docs/benchmarks.md has the measurement behind the default.
"""

from __future__ import annotations

import re
import warnings
from functools import partial
from typing import Any

from ragkit.connectors.base import RawElement
from ragkit.connectors.sphinx import role, rst_inline

_BLANK_LINES = re.compile(r"\n\s*\n")


_RST_UNDERLINE = re.compile(r"^([=\-~^*#+`'\".:_])\1{2,}$")
# an RST comment or link target: ".. " then no "word::" directive on the first line (".. _`Workflow Preset`:")
_RST_COMMENT = re.compile(r"\.\.(?:\s|$)(?!\s*[\w:.+-]+::)")


def text_elements(text: str, rst: bool = False, underlined: bool = False) -> list[RawElement]:
    """Paragraphs split on blank lines. A Title is an RST heading (a line underlined, optionally overlined, with
    one repeated punctuation character) or, in plain text, a short single line without closing punctuation
    (underlined=True: GNU Info, whose headings makeinfo underlines, has only the first, never indented).
    rst=True (a .rst file): only underlined headings are titles, since a short line there is markup
    (".. versionadded:: 3.19", ".. only:: html"); comments and link targets (".. name: ...", ".. _target:") are
    dropped, and the text is read as Sphinx shows it (rst_inline: "Added in version 3.19.", roles and literals
    as code). In plain text an indented line is never a title: dpkg's triggers spec put three paragraphs under an
    indented command, `postinst triggered "<trigger-name> ..."`, and its tables and diagrams are indented too."""
    paras = _BLANK_LINES.split(text)
    out: list[RawElement] = []
    for para in paras:
        indented = para.lstrip("\n")[:1].isspace()
        lines = [ln.rstrip() for ln in para.strip().splitlines()]
        if not lines:
            continue
        if all(_RST_UNDERLINE.match(ln.strip()) for ln in lines):  # a rule between records (util-linux's "-----")
            continue
        title = None if underlined and indented else _underlined_title(lines)  # Info indents examples only
        if title is not None:
            out.append((rst_inline(title) if rst else title, "Title", None))
            continue
        para = "\n".join(lines)
        if rst and _RST_COMMENT.match(para):
            continue
        if rst:
            para = rst_inline(para)
            if not para:
                continue  # a directive that says nothing itself (".. include:: DEPRECATED.txt")
            lines = para.splitlines()
        # a CJK sentence has no spaces to count words by, but its own stops; "(See ... above.)" is a sentence too
        closed = para[-1] in ".,;:!?。！？；：，" or para.endswith((".)", "?)", "!)"))
        short = len(lines) == 1 and len(para) <= 100 and not closed and len(para.split()) <= 12
        is_title = short and not (rst or underlined or indented)
        out.append((para, "Title" if is_title else "NarrativeText", None))
    return out


_RST_READER = partial(text_elements, rst=True)


def _underlined_title(lines: list[str]) -> str | None:
    """The title of an RST-style heading (one line underlined, optionally overlined), else None."""
    if len(lines) >= 2 and _RST_UNDERLINE.match(lines[-1].strip()):
        body = [ln for ln in lines if not _RST_UNDERLINE.match(ln.strip())]
        if len(body) == 1:
            return body[0].strip()
    return None


def markdown_elements(text: str) -> list[RawElement]:
    """Headings, paragraphs, lists, tables and code of Markdown; MyST as Sphinx shows it (myst.py)."""
    from markdown_it import MarkdownIt

    from ragkit.connectors.myst import directive_elements, is_directive, myst_inline

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    out: list[RawElement] = []
    i = 0
    in_list = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            in_list += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            in_list -= 1
        elif tok.type == "heading_open":
            out.append((myst_inline(tokens[i + 1].content, role), "Title", None))
            i += 2
        elif tok.type == "inline" and (content := myst_inline(tok.content, role)).strip():
            out.append((content, "ListItem" if in_list else "NarrativeText", None))
        elif tok.type == "fence" and is_directive(tok.info):
            out.extend(directive_elements(tok.info, tok.content, markdown_elements, _RST_READER))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            out.append((tok.content.rstrip("\n"), "CodeSnippet", None))
        elif tok.type == "table_open":
            rows: list[str] = []
            cells: list[str] = []
            while tokens[i].type != "table_close":
                t = tokens[i]
                if t.type == "inline":
                    cells.append(t.content)
                elif t.type == "tr_close":
                    rows.append(" | ".join(cells))
                    cells = []
                i += 1
            out.append(("\n".join(rows), "Table", None))
        elif tok.type == "html_block" and tok.content.strip():
            history = _yaml_history(tok.content)
            if history is None:
                out.extend(html_elements(tok.content))
            elif history:
                out.append((history, "NarrativeText", None))
        i += 1
    return out


_YAML_COMMENT = re.compile(r"\s*<!--\s*YAML\s*\n(.*?)-->\s*", re.S)
_HISTORY_KEYS = (("added", "Added in"), ("deprecated", "Deprecated since"), ("removed", "Removed in"))


def _yaml_history(block: str) -> str | None:
    """The version history of an API in a `<!-- YAML ... -->` comment, as the docs' site shows it ("Added in:
    v20.17.0."; Node's API docs: nodejs.org renders it, the Markdown hides it, and "In which version was X
    added?" had no answer in the KB); "" for such a comment with none; None for any other HTML block."""
    m = _YAML_COMMENT.fullmatch(block)
    if m is None:
        return None
    import yaml

    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return ""
    if not isinstance(meta, dict):
        return ""

    def versions(value: object) -> str:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)

    lines = [f"{label}: {versions(meta[key])}." for key, label in _HISTORY_KEYS if meta.get(key)]
    for change in meta.get("changes") or []:
        if isinstance(change, dict) and change.get("version") and change.get("description"):
            lines.append(f"Changed in {versions(change['version'])}: {' '.join(str(change['description']).split())}")
    return "\n".join(lines)


_HTML_BLOCKS = {
    "h1": "Title",
    "h2": "Title",
    "h3": "Title",
    "h4": "Title",
    "h5": "Title",
    "h6": "Title",
    "p": "NarrativeText",
    "li": "ListItem",
    "pre": "CodeSnippet",
    "table": "Table",
    "blockquote": "NarrativeText",
    "dt": "NarrativeText",
    "dd": "NarrativeText",
    "figcaption": "NarrativeText",
}
_CONTAINERS = ("blockquote", "dd", "dt", "figcaption")  # blocks that may hold other blocks
_HTML_SKIP = ["script", "style", "noscript", "template", "svg", "nav", "head", "button"]  # a "copy" button is no text
_PERMALINKS = {"#", "¶", "§", "🔗", "¤"}
# a heading's or a defined term's own link: "os.tmpdir()#" (Node), "Abstract¶" (Sphinx), "ffi_call (...) ¶" (Texinfo)
_TITLED = ["h1", "h2", "h3", "h4", "h5", "h6", "dt"]
# links between the pages of a manual: Texinfo's "Next: Simple Example, Up: Using libffi [Index]" header and footer
_NAV_MAX_LINKS, _NAV_MAX_CHARS = 8, 300
_NAV_SUMMARY = re.compile(r"\bnavigation\b", re.I)  # <table summary="Navigation header"> (DocBook)
_NUMBERING = re.compile(r"[\d.\s:;,()\[\]-]*")  # what a table of contents holds beside its links: "1.2.", "10.2.1"
_NAV_RELS = {"next", "prev", "previous", "up", "index", "start", "top", "contents", "home", "first", "last"}


def html_elements(html: str) -> list[RawElement]:
    """Block elements of an HTML page in document order; scripts, styles and navigation are dropped."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # an XHTML page (an <?xml ...?> line first, as libxslt's docs) is HTML to us; bs4 would print a page of advice
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    for tag in soup(_HTML_SKIP):
        tag.decompose()
    # a manual's navigation is on every page and answers no question: Node's module list and page contents, Sphinx's
    # sidebar, Texinfo's next/up links. Each was a chunk of its own, or ran into a page's first paragraph
    # DocBook's header and footer are tables of image links, marked by their summary ("Navigation header")
    marked = [*soup.find_all(attrs={"role": "navigation"}), *soup.find_all("table", summary=_NAV_SUMMARY)]
    for tag in [*marked, *soup.find_all(["p", "div"])]:
        if tag.decomposed:
            continue
        if tag.get("role") == "navigation" or tag.name == "table" or _links_between_pages(tag):
            tag.decompose()
    # a table of contents repeats the page's headings (the FAQ's list of its questions) without what they head, and
    # was the best match for every question about the page
    for tag in soup.find_all(["ul", "ol", "dl"]):
        if not tag.decomposed and _contents_list(tag):
            tag.decompose()
    tables = soup.find_all("table")
    layout = {id(t) for t in tables if _layout(t)}
    for table in (t for t in tables if id(t) in layout):
        for cell in table.find_all(["td", "th"]):
            if not cell.decomposed and cell.find_parent("table") is table and _contents_list(cell):
                cell.decompose()
    for titled in soup.find_all(_TITLED):
        for link in titled.find_all("a"):
            if link.get_text(strip=True) in _PERMALINKS:
                link.decompose()
    out: list[RawElement] = []
    for tag in soup.find_all([*_HTML_BLOCKS, "dl", "div", "tr", "td", "th"]):
        if _enclosed(tag, layout):
            continue  # its text is part of the enclosing block
        if tag.name in ("tr", "td", "th"):
            out.extend(_layout_cell(tag, layout))
            continue
        if tag.name == "table" and id(tag) in layout:
            continue  # a layout table's blocks and cells come on their own
        if tag.name == "div":
            # text straight in a <div> is a block too: "Added in: v20.17.0" and "Stability: 1 - Experimental" are
            # divs in Node's API pages; a div that holds blocks leaves them their own turn
            if tag.find([*_HTML_BLOCKS, "dl", "div", "ul", "ol", "section", "article", "details"]) is None:
                text = _inline_div(tag)
                if text:
                    out.append((text, "NarrativeText", None))
            continue
        if tag.name == "dl":
            out.extend(_definitions(tag))
            continue
        if tag.name in _CONTAINERS and tag.find(list(_HTML_BLOCKS)) is not None:
            continue  # a blockquote of paragraphs: they come on their own (it was read twice)
        if tag.name == "table":
            rows = [" | ".join(c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])) for tr in tag("tr")]
            text = "\n".join(r for r in rows if r.strip())
        elif tag.name == "pre":
            # Node's pages hold an example twice, as ES module and CommonJS code, one <code> each: not one run
            # (a <pre> of code, words and code mixed, bc's grammar, stays one run)
            codes = tag.find_all("code", recursive=False)
            rest = [c for c in tag.children if getattr(c, "name", None) != "code" and c.get_text().strip()]
            alone = len(codes) > 1 and not rest
            text = "\n\n".join(c.get_text().strip("\n") for c in codes) if alone else tag.get_text()
        else:
            text = " ".join(tag.get_text().split())  # inline tags join without a separator: "bold." not "bold ."
        if text.strip():
            out.append((text.strip("\n"), _HTML_BLOCKS[tag.name], None))
    if not out:  # a page of bare text without block tags
        body = soup.get_text("\n", strip=True)
        out = text_elements(body) if body else []
    return out


def _inline_div(tag: Any) -> str:
    """The text of a div of inline content, spaces collapsed; spans side by side, each on a line ("Added in:
    v0.7.5" over "Deprecated since: v6.0.0" in Node's pages, which ran together as "v0.7.5Deprecated")."""
    children = [c for c in tag.children if getattr(c, "name", None) or str(c).strip()]
    if len(children) > 1 and all(getattr(c, "name", None) == "span" for c in children):
        return "\n".join(" ".join(c.get_text().split()) for c in children if c.get_text().strip())
    return " ".join(tag.get_text().split())


def _enclosed(tag: Any, layout: set[int]) -> bool:
    """True when the tag's text is read as part of a block around it: a paragraph, list item, definition list,
    preformatted block or data table (a layout table, in `layout`, encloses nothing)."""
    for parent in tag.parents:
        if parent.name in ("pre", "li", "dl", "p") or (parent.name == "table" and id(parent) not in layout):
            return True
    return False


def _layout(table: Any) -> bool:
    """A table used to lay a page out rather than to hold data: one that holds headings or other tables (an old
    site's whole page, DocBook's Q and A sections), or rows marked as questions (DocBook's Q and A)."""
    if table.find(["h1", "h2", "h3", "h4", "h5", "h6", "table"]) is not None:
        return True
    return table.find("tr", class_="question") is not None


def _layout_cell(tag: Any, layout: set[int]) -> list[RawElement]:
    """A row or cell of a layout table as a block: a row marked as a question (DocBook's `class="question"`) is a
    title, so that its answer's section is the question; text straight in any other cell is a block, as in a div.
    Nothing for the rows and cells of data tables, for cells of a question row, and for cells holding blocks (those
    come on their own)."""
    table = tag.find_parent("table")
    if table is None or id(table) not in layout:
        return []
    row = tag if tag.name == "tr" else tag.find_parent("tr")
    question = row is not None and "question" in (row.get("class") or [])
    if tag.name == "tr":
        # without its example (a <pre>, read on its own): "2.2. When building Valgrind, 'make' fails with this:"
        text = " ".join(" ".join(t for t in tag.find_all(string=True) if t.find_parent("pre") is None).split())
        text = text if question else ""
        return [(text, "Title", None)] if text else []
    if question or tag.find([*_HTML_BLOCKS, "dl", "div", "ul", "ol"]) is not None:
        return []
    text = " ".join(tag.get_text().split())
    return [(text, "NarrativeText", None)] if text else []


def _contents_list(tag: Any) -> bool:
    """True for a table of contents: two or more links to anchors of the page ("#...") and nothing else but their
    numbering ("1.2.", "10.2.1"), laid out as one: nested, numbered, or marked "toc" (DocBook's class). A flat list
    of links to the page's own sections says something ("the following methods: assert.deepEqual(), ..." in Node's
    docs) and is kept. Stops at the first other text or link, so a long list costs little."""
    from bs4 import Comment

    marked = any("toc" in (t.get("class") or []) for t in (tag, tag.parent) if t is not None)
    laid_out = marked or tag.find(["ul", "ol", "dl"]) is not None
    links = 0
    for node in tag.descendants:
        if getattr(node, "name", None) == "a":
            if "#" not in (node.get("href") or ""):
                return False
            links += 1
        elif node.name is None and not isinstance(node, Comment):
            text = node.strip()
            if text and node.find_parent("a") is None:
                if not _NUMBERING.fullmatch(text):
                    return False
                laid_out = True  # numbered entries ("1.1. <a>How do you pronounce ...</a>")
    return links >= 2 and laid_out


def _links_between_pages(tag: Any) -> bool:
    """True for a block of two or more links to a manual's other pages and nothing else: links marked so
    (rel="next", "up", ...) or labelled so ("Next: Simple Example, Up: Using libffi [Index]", Texinfo's footer,
    whose links have no rel)."""
    # a navigation bar is a few short links: anything longer is content, and is not searched link by link (a
    # page-wide <div> of Node's all.html took two minutes that way)
    links = tag.find_all("a", limit=_NAV_MAX_LINKS + 1)
    if not 2 <= len(links) <= _NAV_MAX_LINKS:
        return False
    rest = tag.get_text(" ", strip=True)
    if len(rest) > _NAV_MAX_CHARS:
        return False
    for link in links:
        rest = rest.replace(link.get_text(" ", strip=True), " ", 1)
    labels = re.findall(r"\w+", rest.lower())
    if all(_NAV_RELS & set(link.get("rel") or ()) for link in links):
        return len(labels) <= 2 * len(links)
    return bool(labels) and all(w in _NAV_RELS for w in labels)


def _definitions(dl: Any) -> list[RawElement]:
    """A definition list's entries, one element each, the term before its definition ("-k --keep: Keep (don't
    delete) input files ..."). Read apart, as they were, a manual's option names were a sentence of their own
    that no question resembles, and a chunk could end between an option and what it does."""
    out: list[RawElement] = []
    terms: list[str] = []
    for tag in dl.find_all(["dt", "dd"]):
        if tag.find_parent("dl") is not dl:
            continue  # a nested list is part of its entry's definition
        text = _flat_text(tag)
        if tag.name == "dt":
            terms.append(text)
        elif text or terms:
            head = "; ".join(t for t in terms if t)
            out.append((f"{head}: {text}" if head and text else head or text, "NarrativeText", None))
            terms = []
    if any(terms):
        out.append(("; ".join(t for t in terms if t), "NarrativeText", None))
    return [e for e in out if e[0].strip()]


def _flat_text(tag: Any) -> str:
    """The tag's text on one line; block children end with a space so paragraphs do not run together."""
    for block in tag.find_all([*_HTML_BLOCKS, "div", "ul", "ol", "br"]):
        block.append(" ")
    return " ".join(tag.get_text().split())
