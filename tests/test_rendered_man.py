"""Reader RM: a manual page saved as `man` prints it (`man strings > strings.txt`) is read by its layout, entries
and sections, as the roff reader reads its source; any other text file is read as before."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from ragkit.connectors import parse_file
from ragkit.connectors.rendered_man import is_rendered_man, rendered_man_elements
from ragkit.entries import source_entries

# the layout of `man strings` at 80 columns (its words shortened): three spellings stacked over one text, a tag
# straight under its section, a tag with its text on its own line, justified and hyphenated lines, an example
PAGE = """\
STRINGS(1)                   GNU Development Tools                  STRINGS(1)

NAME
       strings - print the sequences of printable characters in files

SYNOPSIS
       strings [-afovV] [-min-len]
               [-n min-len] [--bytes=min-len]

OPTIONS
       -a
       --all
       -   Scan  the whole file, regardless of what sections it contains or
           whether those sections are loaded or initialized.

       -min-len
       -n min-len
       --bytes=min-len
           Print sequences of displayable characters that are at least min-
           len characters long.  If not specified a default minimum  length
           of 4 is used.  The distinction between displayable and  non-dis\u2010
           playable characters depends on the encoding.

       -o  Like -t o.  Some other versions of strings have -o act like -t d
           instead.

       -v
       -V
       --version
           Print the program version number on the standard output and exit.

   Examples
       To list the strings of a program:

               strings -n 8 /bin/ls
               strings -a /bin/ls | less

SEE ALSO
       ar(1), nm(1)

binutils-2.40.00                  2023-01-14                        STRINGS(1)
"""


def test_stacked_spellings_are_one_entry_over_their_text() -> None:
    elements = rendered_man_elements(PAGE)
    items = [text for text, kind, _ in elements if kind == "ListItem"]
    assert items[0].startswith("-a, --all, -\nScan the whole file, regardless")  # justification undone
    assert items[1] == (
        "-min-len, -n min-len, --bytes=min-len\nPrint sequences of displayable characters that are at least "
        "min-len characters long. If not specified a default minimum length of 4 is used. The distinction between "
        "displayable and non-displayable characters depends on the encoding."
    )  # "min-" "len" keeps its hyphen; groff's "non-dis\u2010" "playable" is one word again
    assert items[2] == "-o\nLike -t o. Some other versions of strings have -o act like -t d instead."
    assert items[3] == "-v, -V, --version\nPrint the program version number on the standard output and exit."
    titles = [text for text, kind, _ in elements if kind == "Title"]
    assert titles == ["NAME", "SYNOPSIS", "OPTIONS", "Examples", "SEE ALSO"]  # no header or footer line
    assert "strings -n 8 /bin/ls\nstrings -a /bin/ls | less" in [text for text, _, _ in elements]  # lines kept


def test_tabs_from_col_b_read_alike() -> None:
    # `man strings | col -b` (no -x) turns runs of spaces into tabs
    tabbed = "\n".join(f"\t{line[7:]}" if line.startswith(" " * 7) else line for line in PAGE.split("\n"))
    assert "\t" in tabbed
    assert rendered_man_elements(tabbed) == rendered_man_elements(PAGE)


def test_the_answer_checks_find_n_heading_its_entry(tmp_path: Path) -> None:
    """The case found: `-n`'s entry read as empty from strings.txt, so a right answer was withheld."""
    path = tmp_path / "strings.txt"
    path.write_text(PAGE, encoding="utf-8")
    doc = parse_file(path)
    entries = dict(source_entries(doc.text))
    tag = next(t for t in entries if "-n min-len" in t)
    assert "at least min-len characters long" in entries[tag]
    assert "STRINGS(1)" not in doc.text


def test_what_is_and_is_not_a_rendered_page() -> None:
    assert is_rendered_man(PAGE)
    bsd = "SCP(1)     BSD General Commands Manual     SCP(1)\n\nNAME\n     scp\n\nBSD     December 16, 2022     BSD\n"
    assert is_rendered_man(bsd)
    assert not is_rendered_man("SED(1) notes\n\nWe use sed a lot.\n")  # no footer naming the page
    assert not is_rendered_man("Release notes\n\n- fixed SED(1)\n")
    assert not is_rendered_man("")


def test_a_plain_text_file_is_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("On call\n\n  -a\n  --all\n      Page everyone.\n", encoding="utf-8")
    assert [e.kind for e in parse_file(path).elements] == ["Title", "NarrativeText"]


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db")
def test_a_real_page_rendered_by_man_reads_like_its_source(tmp_path: Path) -> None:
    """Every option entry of strip(1)'s source heads an entry of its rendering read by RM (the roff reader's
    numbered steps, "1.<Link the executable...>", are tags of another kind)."""
    source = Path("/usr/share/man/man1/strip.1.gz")
    if not source.exists():
        pytest.skip("binutils' manual pages are not installed")
    env = {"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    text = subprocess.run(["man", "-l", str(source)], capture_output=True, text=True, env=env, check=True).stdout
    (tmp_path / "strip.txt").write_text(text, encoding="utf-8")
    rendered = [e.text.split("\n", 1)[0] for e in parse_file(tmp_path / "strip.txt").elements if e.kind == "ListItem"]
    (tmp_path / "strip.1").write_bytes(gzip.decompress(source.read_bytes()))
    roff = [e.text.split("\n", 1)[0] for e in parse_file(tmp_path / "strip.1").elements if e.kind == "ListItem"]
    options = [tag for tag in roff if tag.startswith("-")]
    assert len(options) > 20
    assert [tag for tag in options if tag not in rendered] == []


def test_a_terminals_overstrikes_read_as_what_it_prints(tmp_path: Path) -> None:
    """`man strip > strip.txt` where man keeps bold and underline (MAN_KEEP_FORMATTING, some systems' default)
    wrote "N\\bNA\\bAM\\bME\\bE": read as text it was "NNAAMMEE" and "--FF"."""

    def bold(text: str) -> str:
        return "".join(f"{c}\b{c}" if c.strip() else c for c in text)

    def underline(text: str) -> str:
        return "".join(f"_\b{c}" if c.strip() else c for c in text)

    struck = "\n".join(
        bold(line) if line[:1].isalpha() and line.isupper() else line.replace("min-len", underline("min-len"))
        for line in PAGE.split("\n")
    )
    assert "\b" in struck and "NNAAMMEE" in struck.replace("\b", "")
    (tmp_path / "plain.txt").write_text(PAGE, encoding="utf-8")
    (tmp_path / "struck.txt").write_text(struck, encoding="utf-8")
    assert parse_file(tmp_path / "struck.txt").elements == parse_file(tmp_path / "plain.txt").elements


# Google Cloud SDK's layout (thousands of pages on a machine with the SDK): a long name overlaps the header's
# middle, and a blank line stands between each flag and its text
GCLOUD = """
GCLOUD_COMPUTE_BACKEND-BUCKEGeneralTCoGCLOUD_COMPUTE_BACKEND-BUCKETS_DELETE(1)

NAME
       gcloud compute backend-buckets delete - delete backend buckets

FLAGS
         --global

           If set, the bucket is global.

         --region=REGION

           Region of the bucket to delete. Overrides the default compute/region
           property value for this command invocation.

                                      GCLOUD_COMPUTE_BACKEND-BUCKETS_DELETE(1)
"""

# entries that each fit their line, and no entry with its text under its tag to learn the text's column from
ONE_LINE = """\
FC-CAT(1)                   General Commands Manual                  FC-CAT(1)

OPTIONS
       A summary of options is included below.

       -r     Recurse into subdirectories.

       -v     Be verbose.

Fontconfig 2.14.1                  Aug 13, 2008                       FC-CAT(1)
"""


def test_a_flag_over_a_blank_line_heads_the_text_below_it() -> None:
    assert is_rendered_man(GCLOUD)
    items = [text for text, kind, _ in rendered_man_elements(GCLOUD) if kind == "ListItem"]
    assert items == [
        "--global\nIf set, the bucket is global.",
        "--region=REGION\nRegion of the bucket to delete. Overrides the default compute/region property value for "
        "this command invocation.",
    ]


def test_entries_that_fit_their_line() -> None:
    elements = rendered_man_elements(ONE_LINE)
    assert [t for t, k, _ in elements if k == "ListItem"] == ["-r\nRecurse into subdirectories.", "-v\nBe verbose."]
    assert ("A summary of options is included below.", "NarrativeText", None) in elements


# ar's operations: one-letter tags with their text beside them, most lines of the page indented as the entries' text
AR = """\
AR(1)                        GNU Development Tools                       AR(1)

DESCRIPTION
       ar creates archives.

       d   Delete modules from the archive.  Specify the names of modules to
           be deleted as member...

       m   Use this operation to move members in an archive.

COLORS
       The output colorization is implemented by
       terminal-colors.d(5) functionality.

          /etc/terminal-colors.d/ar.disable

binutils-2.40.00                  2023-01-14                             AR(1)
"""


def test_one_letter_entries_and_a_ragged_paragraph() -> None:
    elements = rendered_man_elements(AR)
    assert [t for t, k, _ in elements if k == "ListItem"] == [
        "d\nDelete modules from the archive. Specify the names of modules to be deleted as member...",
        "m\nUse this operation to move members in an archive.",
    ]  # the body's indent is the section text's (7), not the entries' text's (11), the most common one
    colors = [t for t, k, _ in elements if k == "NarrativeText" and t.startswith("The output colorization")]
    assert len(colors) == 1 and "terminal-colors.d(5)" in colors[0]  # short lines over a path: a paragraph
