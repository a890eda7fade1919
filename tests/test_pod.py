"""Perl's documentation (POD) read as perldoc shows it: the format's commands, codes and a module's code."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ragkit.connectors import SourceOptions, discover_files, parse_file
from ragkit.errors import ParseError

POD = """\
=encoding utf8

=head1 NAME

Getopt::Tiny - parse C<@ARGV> E<mdash> B<fast>X<options>

=head1 OPTIONS

=over 4

=item B<--verbose>

=item B<-v>

Print more; see L<perlrun/"Command Switches">, L<the FAQ|Getopt::Tiny::FAQ> and L<the site|https://x.org/>.

=over 2

=item *

A bullet about C<< $a <=> $b >> and E<lt>fileE<gt>.

=back

=back

Back in the options.

=head2 Example

    use Getopt::Tiny;
      GetOptions(\\%h);

=begin html

<p>Only for HTML</p>

=end html

=for comment nobody reads this

=for text Only for text.

=cut

sub code_is_not_documentation { 1 }
"""


def _parsed(path: Path, content: str | bytes) -> list[tuple[str, str | None, str]]:
    """(kind, section, text) of each element ingest reads from `content` saved as `path`."""
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return [(e.kind, e.section, e.text) for e in parse_file(path).elements]


def test_a_pod_document_is_read_as_perldoc_shows_it(tmp_path: Path) -> None:
    assert _parsed(tmp_path / "tiny.pod", POD) == [
        ("Title", "NAME", "NAME"),
        ("NarrativeText", "NAME", "Getopt::Tiny - parse @ARGV — fast"),  # X<> is an index entry
        ("Title", "OPTIONS", "OPTIONS"),
        # an item's text heads its entry, stacked tags one title; a link prints its text, or the section and the page
        ("Title", "--verbose, -v", "--verbose, -v"),
        # pod 3: a link to a URL keeps it, as pod2text prints it (CPAN's Meta spec lost its addresses)
        (
            "NarrativeText",
            "--verbose, -v",
            'Print more; see "Command Switches" in perlrun, the FAQ and the site <https://x.org/>.',
        ),
        ("ListItem", "--verbose, -v", "•\nA bullet about $a <=> $b and <file>."),
        ("NarrativeText", "OPTIONS", "Back in the options."),  # the list's end returns to the heading above it
        ("Title", "Example", "Example"),
        ("CodeSnippet", "Example", "use Getopt::Tiny;\n  GetOptions(\\%h);"),  # verbatim: lines and indents kept
        ("NarrativeText", "Example", "Only for text."),  # other formatters' blocks are left out
    ]


def test_a_perl_modules_documentation_is_read_and_its_code_left_out(tmp_path: Path) -> None:
    module = "package Getopt::Tiny;\nuse strict;\n\nsub new { bless {}, shift }\n\n" + POD + "\n1;\n__END__\n"
    assert _parsed(tmp_path / "Tiny.pm", module) == _parsed(tmp_path / "tiny.pod", POD)
    (tmp_path / "tiny.pod.gz").write_bytes(gzip.compress(POD.encode()))
    assert parse_file(tmp_path / "tiny.pod.gz").text == parse_file(tmp_path / "tiny.pod").text
    # a module without documentation is reported, not read as text
    (tmp_path / "Bare.pm").write_text("package Bare;\nsub x { 1 }\n1;\n", encoding="utf-8")
    with pytest.raises(ParseError, match="holds no documentation"):
        parse_file(tmp_path / "Bare.pm")
    files, unsupported = discover_files([tmp_path])
    assert {p.name for p in files} >= {"Tiny.pm", "tiny.pod", "tiny.pod.gz"} and not unsupported


def test_pod_is_read_by_its_own_reader_in_its_declared_encoding(tmp_path: Path) -> None:
    latin = "=encoding latin1\n\n=head1 Café\n\nE<eacute>t\xe9 and E<0x263A>, E<9786> and E<bogus>.\n"
    assert _parsed(tmp_path / "latin.pod", latin.encode("latin-1")) == [
        ("Title", "Café", "Café"),
        ("NarrativeText", "Café", "été and ☺, ☺ and E<bogus>."),
    ]
    # unstructured would read the markup as text
    doc = parse_file(tmp_path / "latin.pod", options=SourceOptions(engine="unstructured"))
    assert [e.text for e in doc.elements] == ["Café", "été and ☺, ☺ and E<bogus>."]


def test_unclosed_and_nested_codes_keep_their_text(tmp_path: Path) -> None:
    # a bare ">" closes the innermost code, as in perldoc; a code still open at the end is printed as written
    pod = "=pod\n\nB<bold I<and italic>> then C<a > b> and C<open and L</Section> to the end.\n"
    assert [t for _, _, t in _parsed(tmp_path / "codes.pod", pod)] == [
        'bold and italic then a  b> and C<open and "Section" to the end.'
    ]


def test_a_bullets_text_may_stand_on_its_item_line(tmp_path: Path) -> None:
    pod = (
        "=head1 Why\n\n=over\n\n=item * pure perl\n\n=item * less cruft\n\n=back\n\n"
        "=over\n\n=item 500 Server error\n\nSee the log.\n\n=back\n"
    )
    assert _parsed(tmp_path / "why.pod", pod) == [
        ("Title", "Why", "Why"),
        ("ListItem", "Why", "• pure perl"),
        ("ListItem", "Why", "• less cruft"),
        ("Title", "500 Server error", "500 Server error"),  # perldiag's message, not item 500
        ("NarrativeText", "500 Server error", "See the log."),
    ]


GETOPT = Path("/usr/share/perl/5.36.0/Getopt/Long.pm")


@pytest.mark.skipif(not GETOPT.exists(), reason="needs Perl's Getopt::Long as Debian ships it")
def test_a_real_perl_modules_documentation() -> None:
    doc = parse_file(GETOPT)
    entry = [e for e in doc.elements if e.section and e.section.startswith("bundling_override")]
    assert entry[0].kind == "Title" and "long option names override option bundles" in entry[1].text
    assert not any("sub GetOptions" in e.text for e in doc.elements)  # the module's code is not read
    assert all(e.section for e in doc.elements)
