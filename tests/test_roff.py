"""Manual pages written by generators (ronn, pod2man, DocBook): bullets, tables and escaped characters read as
`man` shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.connectors import parse_file


def _read(tmp_path: Path, name: str, source: str) -> list[tuple[str, str]]:
    """(kind, text) of each element of the manual page `name` whose roff source is `source`."""
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return [(e.kind, e.text) for e in parse_file(path).elements]


def texts(tmp_path: Path, name: str, source: str) -> list[str]:
    """The text of each element of the manual page `name` whose roff source is `source`."""
    return [text for _, text in _read(tmp_path, name, source)]


# ronn's output (zstd.1): every full stop escaped, bullets as ".IP" with a circle, a tbl table with no layout
RONN = r""".TH "TOOL" "1" "2023" "tool 1.5" "User Commands"
.SH "SYNOPSIS"
.TS
allbox;
\fBtool\fR [\fIOPTIONS\fR] [\-	\fIINPUT\-FILE\fR]
.TE
.P
\fBtool\fR differs from gzip:
.IP "\[ci]" 4
Source files are kept\. It\'s possible to remove them\.
.IP "\[ci]" 4
Progress is shown by default\.
.IP "" 0
.SS "Modifiers"
.IP "\(bu" 4
\fB\-#\fR: selects \fB#\fR compression level [1\-19] (default: 3)
.IP "\(bu" 4
\fB\-\-ultra\fR: unlocks high levels 20+ (maximum 22)\.
.IP
Note 1: uses more memory\.
.P
.B Table\ \&1.\ \&Escapes
.TS
allbox tab(:);
lt lt.
T{
NULL
T}:T{
\e0
T}
.T&
l l.
<tab>:\et
.TE
"""


def test_a_generated_pages_bullets_tables_and_escaped_stops_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tool.1"
    path.write_text(RONN, encoding="utf-8")
    got = [(e.kind, e.section, e.text) for e in parse_file(path).elements]
    assert got == [
        ("Title", "SYNOPSIS", "SYNOPSIS"),
        ("NarrativeText", "SYNOPSIS", "tool [OPTIONS] [- | INPUT-FILE]"),  # the layout line "allbox;" is no text
        ("NarrativeText", "SYNOPSIS", "tool differs from gzip:"),
        # a bullet is no tag: each item is its own entry, none lost ("\." is a full stop, "\'" an apostrophe)
        ("ListItem", "SYNOPSIS", "Source files are kept. It's possible to remove them."),
        ("ListItem", "SYNOPSIS", "Progress is shown by default."),
        ("Title", "Modifiers", "Modifiers"),
        ("ListItem", "Modifiers", "-#: selects # compression level [1-19] (default: 3)"),
        # ".IP" alone goes on the item above: the note stays with its option
        ("ListItem", "Modifiers", "--ultra: unlocks high levels 20+ (maximum 22).\nNote 1: uses more memory."),
        ("NarrativeText", "Modifiers", "Table 1. Escapes"),  # "\ " is a space inside a request's argument
        ("NarrativeText", "Modifiers", "NULL | \\0\n<tab> | \\t"),  # "T{ ... T}" cells, a layout changed by ".T&"
    ]


REAL_PAGES = [
    # zstd's (ronn): sentences, option tags and a tbl table read, no layout or escape left
    ("zstd.1.gz", ["Source files are preserved by default. It's possible to remove them",
                   "-#: selects # compression level [1-19] (default: 3)"], ["allbox", "\\."]),
    # mawk's names itself with a string (".ds n mawk", "\\*n")
    ("mawk.1.gz", ["mawk is an interpreter for the AWK Programming Language",
                   "error\nMawk prints an error message and exits. This is the default."], ["  uses its value"]),
    # find's writes "\\.B" at a line's start, which groff reads as the request ".B"
    ("find.1.gz", ["The syntax -perm +MODE was removed in findutils-4.5.12, in favour of -perm /MODE."], [".B -perm"]),
    ("patch.1.gz", ["Andreas Grünbacher added support for merging."], ["Grnbacher"]),
    # ps's writes break points ("pid,\\:user") and its author's address with them (".UR lankeste@\\:fwi...")
    ("ps.1.gz", ["lankeste@fwi.uva.nl Branko Lankester", "ps -eo pid,user,args --sort user"], ["\\:", ",:"]),
    # git's (DocBook): a term over its text, nested ones too, as ".TP" entries read
    ("git-commit.1.gz", ["verbatim\nDo not change the message at all.", "-n, --[no-]verify\nBy default, the"],
     ["verbatim\n\nDo not change"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "present", "absent"), REAL_PAGES)
def test_real_manual_pages_read_as_man_shows_them(name: str, present: list[str], absent: list[str]) -> None:
    page = Path("/usr/share/man/man1") / name
    if not page.exists():
        pytest.skip(f"{name} is not installed")
    text = parse_file(page).text
    assert [p for p in present if p not in text] == [] and [a for a in absent if a in text] == []


def test_an_escaped_tab_separates_words_in_a_tag_and_in_text(tmp_path: Path) -> None:
    path = tmp_path / "x.1"
    path.write_text('.TH X 1\n.SH VERSIONS\n.IP "v6.0\\t20 Apr 09" 8\nInfo-ZIP\n.PP\nName\\tDate\n', encoding="utf-8")
    got = [(e.kind, e.text) for e in parse_file(path).elements]
    # "\t" was dropped as a motion: "v6.020 Apr 09", a version glued to its day
    assert got == [("Title", "VERSIONS"), ("ListItem", "v6.0\t20 Apr 09\nInfo-ZIP"), ("NarrativeText", "Name\tDate")]


def test_strings_defined_by_ds_are_read_where_they_are_used(tmp_path: Path) -> None:
    # mawk's page: ".ds n mawk", then "\fB\*n\fP" for every "mawk" (each one was dropped: "If this is set,  uses")
    got = _read(
        tmp_path,
        "mawk.1",
        ".ds N Mawk\n.ds n mawk\n.TH MAWK 1\n.SH DESCRIPTION\n\\fB\\*n\\fP is an interpreter.\n.TP\nerror\n"
        "\\fB\\*N\\fP prints an error message and exits. This is the default.\n"
        '.PP\n.ds X "  two\n.as X  more\nSay \\*[X], \\*(lqquoted\\*(rq and \\*Q.\n',
    )
    assert got == [
        ("Title", "DESCRIPTION"),
        ("NarrativeText", "mawk is an interpreter."),
        ("ListItem", "error\nMawk prints an error message and exits. This is the default."),
        ("NarrativeText", "Say   two more, “quoted” and ."),  # an undefined string is empty, as in troff
    ]


def test_pod2man_strings_read_as_a_terminal_shows_them(tmp_path: Path) -> None:
    # pod2man defines its quotes twice, for nroff (".ie n \{") and for troff (".el\{", no space): the terminal's
    # are kept; its apostrophe "\*(Aq" is defined under ".ie \n(.g", which is not read, so it is built in; a text
    # line opening with it stays text (it was read as a "'" request and lost: perf's pages)
    got = texts(
        tmp_path,
        "x.1",
        '.ie n \\{\\\n.    ds L" ""\n.    ds R" ""\n\'br\\}\n.el\\{\\\n.    ds L" ``\n.    ds R" \'\'\n\'br\\}\n'
        ".ie \\n(.g .ds Aq \\(aq\n.el       .ds Aq '\n.TH X 1\n.SH DESCRIPTION\n"
        'See \\*(L"Options\\*(R" (it doesn\\*(Aqt matter).\n\\*(Aqperf kvm top\\*(Aq shows it.\n'
        ".PP\nzip -d foo \\\\*.o\n",
    )
    # "\\*" is a backslash and a star, not a string
    assert got == ["DESCRIPTION", "See \"Options\" (it doesn't matter). 'perf kvm top' shows it.", "zip -d foo \\*.o"]


def test_a_line_opening_with_an_escaped_dot_and_a_macro_is_a_request(tmp_path: Path) -> None:
    # find's page writes "\\.B \\-perm +MODE"; groff reads it as ".B", and the parser gave ".B -perm +MODE" as text
    path = tmp_path / "find.1"
    path.write_text(
        ".TH FIND 1\n.SH HISTORY\nThe syntax\n\\.B \\-perm +MODE\nwas removed.\n\\. alone\n", encoding="utf-8"
    )
    assert [e.text for e in parse_file(path).elements] == ["HISTORY", "The syntax -perm +MODE was removed. . alone"]


def test_accented_letters_and_unicode_glyphs_print_as_groff_prints_them(tmp_path: Path) -> None:
    # patch's page: "Andreas Gr\\[:u]nbacher" read "Grnbacher"; git-format-patch's "Kleine-K\\[:o]nig" likewise
    path = tmp_path / "patch.1"
    text = ".TH PATCH 1\n.SH AUTHORS\n"
    text += "Andreas Gr\\[:u]nbacher, Fran\\(,cois, caf\\['e], \\[u00DF], \\[u0065_0301], \\[xyz].\n"
    path.write_text(text, encoding="utf-8")
    assert [e.text for e in parse_file(path).elements] == ["AUTHORS", "Andreas Grünbacher, François, café, ß, é, ."]


def test_break_points_print_nothing_and_a_links_address_has_its_escapes_read(tmp_path: Path) -> None:
    # ps's page: ".UR lankeste@\\:fwi.\\:uva.\\:nl" printed its escapes, which a held-out answer then quoted
    got = texts(
        tmp_path,
        "ps.1",
        ".TH PS 1\n.SH AUTHOR\nps was written by\n.UR lankeste@\\:fwi.\\:uva.\\:nl\nBranko Lankester\n.UE .\n"
        ".PP\n.B ps \\-eo pid,\\:user,\\:args\n",
    )
    assert got == ["AUTHOR", "ps was written by lankeste@fwi.uva.nl Branko Lankester", "ps -eo pid,user,args"]


def test_a_docbook_definition_list_reads_as_entries_tag_over_text(tmp_path: Path) -> None:
    # DocBook writes ".PP / term / .br / term / .RS 4 / text / .RE" where groff pages write ".TP": read as two
    # paragraphs, a chunk could end on "scissors" with its text in the next chunk (git commit's page, trial 45)
    got = _read(
        tmp_path,
        "git-commit.1",
        ".TH GIT 1\n.SH OPTIONS\n.PP\n\\fB\\-A \\fR\\fIauthmethod\\fR\n.br\n"
        "\\fB\\-\\-auth=\\fR\\fIauthmethod\\fR\n.RS 4\n"
        "Sets the method\\&.\n.RE\n.PP\n\\-\\-cleanup=<mode>\n.RS 4\nHow to clean\\&.\n.PP\nverbatim\n.RS 4\n"
        "Do not change the message at all\\&.\n.RE\n.RE\n.PP\nAn example follows this sentence.\n.RS 4\n.nf\n"
        "$ git commit\n.fi\n.RE\n.PP\nOther options:\n.RS 4\nStill a paragraph.\n.RE\n"
        ".PP\nAn OR list has the form\n.RS\n.PP\ncmd1 || cmd2\n.RE\n",
    )
    assert got == [
        ("Title", "OPTIONS"),
        ("ListItem", "-A authmethod, --auth=authmethod\nSets the method."),  # stacked terms, one tag
        ("ListItem", "--cleanup=<mode>\nHow to clean."),
        ("ListItem", "verbatim\nDo not change the message at all."),  # a nested entry is an entry too
        ("NarrativeText", "An example follows this sentence."),  # a sentence is no term: a break, as before
        ("NarrativeText", "$ git commit"),
        ("NarrativeText", "Other options:"),  # nor is a lead-in ending in a colon
        ("NarrativeText", "Still a paragraph."),
        ("NarrativeText", "An OR list has the form"),  # no text right under it: the paragraph it was
        ("NarrativeText", "cmd1 || cmd2"),
    ]


def test_asciidoctors_entries_and_links_read_as_man_shows_them(tmp_path: Path) -> None:
    # util-linux's pages (Asciidoctor): an entry opens with ".sp", and ".URL"/".MTO" are macros the page defines
    # (groff's www.tmac): findmnt's author and bug tracker were lost (trial 48)
    got = _read(
        tmp_path,
        "findmnt.8",
        '.TH FINDMNT 8\n.de URL\n\\fI\\\\$2\\fP <\\\\$1>\\\\$3\n..\n.als MTO URL\n.SH "OPTIONS"\n.sp\n'
        "\\fB\\-A\\fP, \\fB\\-\\-all\\fP\n.RS 4\nPrint all filesystems.\n.RE\n.SH AUTHORS\n.sp\n"
        '.MTO "kzak\\(atredhat.com" "Karel Zak" ""\n.sp\nUse the issue tracker at\n'
        '.URL "https://example.org/issues" "" "."\n',
    )
    assert got == [
        ("Title", "OPTIONS"),
        ("ListItem", "-A, --all\nPrint all filesystems."),
        ("Title", "AUTHORS"),
        ("NarrativeText", "Karel Zak <kzak@redhat.com>"),
        ("NarrativeText", "Use the issue tracker at https://example.org/issues."),
    ]


def test_a_backslash_ending_a_line_continues_it(tmp_path: Path) -> None:
    # pod2man's preamble: ".if \\n(.H>23 .if \\n(.V>19 \\" then "\\{\\" on the next line: one request with a
    # troff-only block, which printed "\\" as a paragraph and redefined "\\*o" for the page
    assert texts(
        tmp_path,
        "x.1",
        ".ds o o\n.if \\n(.H>23 .if \\n(.V>19 \\\n\\{\\\n.    ds o a\n.\\}\n.TH X 1\n.SH NAME\n"
        "x \\- d\\*o it \\\nall, with a printed backslash \\\\\nat a line's end\n",
    ) == [
        "NAME",
        "x - do it all, with a printed backslash \\ at a line's end",
    ]


def test_a_manual_page_records_the_man_parsers_version() -> None:
    # source_suffix names every page ".man", which parser_version did not know: pages read by man 1-3 were never
    # read again after an upgrade (mawk's page kept its missing "mawk")
    from ragkit.connectors.parsing import _MAN_VERSION, SourceOptions, parser_version, source_suffix

    for name in ("mawk.1.gz", "tar.1", "openssl.1ssl.gz"):
        assert parser_version(source_suffix(name), SourceOptions()) == _MAN_VERSION > 1
    # Info manuals and POD changed their reading unversioned too
    for name in ("sed.info.gz", "find.info-2.gz", "perldiag.pod", "Long.pm"):
        assert parser_version(source_suffix(name), SourceOptions()) >= 2


def test_macro_definitions_and_ignored_text_are_no_text(tmp_path: Path) -> None:
    # rst2man (Sphinx's and docutils' pages: LLVM's, CMake's, ctags') defines its macros with groff's ".de1",
    # which was read as a paragraph of "\\$1 \\n[an-margin] level ..."; Asciidoctor appends to a macro with ".am"
    # and ends it with ".  ."; gzip's pages hide a licence note in ".ig", whose argument may be a comment
    source = (
        ".de1 rstReportMargin\n\\\\$1 \\\\n[an-margin]\nlevel \\\\n[rst2man-indent-level]\n..\n"
        ".if \\n[.g] \\{\\\n.  am URL\n.    ad l\n.  .\n.\\}\n"
        '.ig \\" -*- nroff -*-\nCopyright notice\n..\n.ig END\nmore ignored\n.END\n'
        ".TH X 1\n.SH NAME\nx \\- a tool\n"
    )
    assert texts(tmp_path, "x.1", source) == ["NAME", "x - a tool"]


def test_a_terminals_one_line_conditional_runs_its_request(tmp_path: Path) -> None:
    # pod2man writes an item named in code for the terminal, ".ie n .IP", and for the typesetter, ".el .IP": both
    # were dropped, so half of objdump's option entries lost their tags and ran into the paragraph before them
    source = (
        ".TH GPROF 1\n.SH OPTIONS\nThese options take a symspec.\n"
        '.ie n .IP """\\-A[\\fIsymspec\\fP]""" 4\n.el .IP "\\f(CW\\-A[\\f(CIsymspec\\f(CW]\\fR" 4\n'
        '.IX Item "-A[symspec]"\nPrints annotated source.\n.ie n .ds Pi pi\n.el .ds Pi \\(*p\nbetween \\*(Pi and 2\n'
    )
    assert _read(tmp_path, "gprof.1", source) == [
        ("Title", "OPTIONS"),
        ("NarrativeText", "These options take a symspec."),
        ("ListItem", '"-A[symspec]"\nPrints annotated source. between pi and 2'),
    ]
