"""A parser whose output changes must bump its version (connectors/parsing.py: _PARSER_VERSIONS, _MAN_VERSION), or
KBs keep their stored reading forever: the next ingest re-reads a file only when its recorded version is older.
Man pages (versions 2 and 3), Info and POD once changed unnoticed. Each format's sample below is parsed and
hashed beside its version in tests/data/golden/parser_versions.json; a changed hash under the same version fails.
After bumping the version, record the new hash: `pytest tests/test_parser_versions.py --update-golden`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ragkit.connectors.parsing import SourceOptions, parse_bytes, parser_version

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "examples" / "sample_corpus"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "parser_versions.json"

MAN = r""".ds n mawk
.TH MAWK 1
.SH OPTIONS
.TP
\fB\-W\fP \fIinteractive\fP
sets unbuffered writes; \fB\*n\fP doesn\*(Aqt wait.
.PP
\-v
.RS 4
a DocBook entry's text
.RE
.sp
\-q
.RS 4
an Asciidoctor entry's text, by
.MTO "a\(atb.org" "A. Author" "."
.RE
a line continued \
here
.IP \(bu 4
a bullet\tafter a tab
.ig
text roff ignores
..
.de1 M
a macro rst2man defines
..
.ie n .IP "\-A[\fIsymspec\fP]" 4
.el .IP "\f(CW\-A[\f(CIsymspec\f(CW]\fR" 4
an item pod2man names in code
.TS
l l.
0	normal
2	error
.TE
"""
INFO = (
    "This is ed.info.\n\n\x1f\nFile: ed.info,  Node: Top,  Next: Overview,  Up: (dir)\n\nGNU ed\n******\n\n"
    "* Menu:\n\n* Overview::   What ed does.\n\n\x1f\nFile: ed.info,  Node: Overview,  Prev: Top,  Up: Top\n\n"
    "1 Overview\n**********\n\n'ed' is a line-oriented text editor.  Use the '-p' option to set a prompt.\n"
)
POD = (
    "=head1 NAME\n\nGetopt::Long - options\n\n=head1 OPTIONS\n\n=over 4\n\n=item o\n\nA tag, not a bullet.\n\n"
    "=item --verbose\n\nSays more, with C<code> and B<bold>.\n\n=back\n\n=cut\n"
)
RST = "Title\n=====\n\n.. versionadded:: 3.24\n\nSee :command:`while` and ``literal``.\n\n.. note::\n\n   A note.\n"
SAMPLES: dict[str, bytes] = {
    ".html": (CORPUS / "data-retention.html").read_bytes(),
    ".md": (CORPUS / "security" / "key-rotation.md").read_bytes(),
    ".txt": (CORPUS / "on-call.txt").read_bytes(),
    ".rst": RST.encode(),
    ".man": MAN.encode(),
    ".info": INFO.encode(),
    ".pod": POD.encode(),
}


def _reading(suffix: str, data: bytes) -> dict[str, object]:
    doc = parse_bytes(data, uri=f"sample{suffix}", name=f"sample{suffix}", suffix=suffix, options=SourceOptions())
    text = "\n\n".join(f"[{e.kind}] {e.text}" for e in doc.elements)
    return {"version": parser_version(suffix, SourceOptions()), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def test_a_parser_that_reads_differently_has_a_new_version(request: pytest.FixtureRequest) -> None:
    now = {suffix: _reading(suffix, data) for suffix, data in SAMPLES.items()}
    if request.config.getoption("--update-golden"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    was = json.loads(GOLDEN.read_text(encoding="utf-8"))
    unversioned = [s for s in now if s in was and now[s]["sha256"] != was[s]["sha256"]
                   and now[s]["version"] == was[s]["version"]]  # fmt: skip
    assert unversioned == [], (
        f"the {', '.join(unversioned)} parser now reads its sample differently under the same version: bump it in "
        "connectors/parsing.py so stored files are re-read, then run this test with --update-golden"
    )
    assert now == was, "a parser's version changed: record it with pytest tests/test_parser_versions.py --update-golden"
