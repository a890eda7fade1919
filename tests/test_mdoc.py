"""Manual pages in BSD's mdoc macros (OpenSSH's, tmux's, dash's): read as `man` shows them, entries tag first."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ragkit.connectors import parse_file
from ragkit.connectors.mdoc import is_mdoc, mdoc_elements

# the shapes OpenSSH's pages use, cut down: a licence roff ignores, a synopsis of flags, a keyword list whose
# entries hold paragraphs, a display and a nested list, flags stacked over one entry, spacing turned off
PAGE = r""".ig
Copyright (c) 1999 a licence roff never prints
..
.Dd $Mdocdate: January 13 2023 $
.Dt SSH_CONFIG 5
.Os
.Sh NAME
.Nm ssh_config
.Nd OpenSSH client configuration file
.Sh SYNOPSIS
.Nm ssh
.Op Fl 46
.Op Fl B Ar bind_interface
.Ar destination
.Sh DESCRIPTION
.Xr ssh 1
reads, in this order:
.Bl -enum -offset indent -compact
.It
command-line options
.It
the user's file
.Pq Pa ~/.ssh/config
.El
.Pp
The possible keywords are:
.Bl -tag -width Ds
.It Cm Port
Specifies the port number.
The default is 22.
.It Cm DynamicForward
The argument must be
.Sm off
.Oo Ar bind_address : Oc Ar port .
.Sm on
.Pp
Only the superuser can forward privileged ports.
.It Cm Ciphers
The default is:
.Bd -literal -offset 3n
aes128-ctr,aes192-ctr,
aes256-ctr
.Ed
.Pp
See
.Dq PATTERNS ,
.Xr ssh 1 ,
and the
.Fl Q
option.
.El
.Sh OPTIONS
.Bl -tag -width Ds
.It Fl L Xo
.Sm off
.Oo Ar bind_address : Oc
.Ar port : host : hostport
.Sm on
.Xc
.It Fl L Xo
.Sm off
.Ar local_socket : remote_socket
.Sm on
.Xc
Forwards a local port or socket.
.It Fl v
Verbose mode.
.El
.Sh TOKENS
.Bl -column "Keyword" "Tokens"
.It Sy Keyword Ta Sy Tokens
.It Cm Hostname Ta %% and %h
.El
.D1 Host *.co.uk
"""


def test_an_mdoc_page_reads_as_man_prints_it_with_entries_tag_first(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config.5"
    path.write_text(PAGE, encoding="utf-8")
    assert [(e.kind, e.text) for e in parse_file(path).elements] == [
        ("Title", "NAME"),
        ("NarrativeText", "ssh_config — OpenSSH client configuration file"),
        ("Title", "SYNOPSIS"),
        ("NarrativeText", "ssh [-46] [-B bind_interface] destination"),
        ("Title", "DESCRIPTION"),
        ("NarrativeText", "ssh(1) reads, in this order:"),
        ("ListItem", "1. command-line options"),
        ("ListItem", "2. the user's file (~/.ssh/config)"),
        ("NarrativeText", "The possible keywords are:"),
        ("ListItem", "Port\nSpecifies the port number. The default is 22."),
        (
            "ListItem",
            "DynamicForward\nThe argument must be [bind_address:]port.\n"
            "Only the superuser can forward privileged ports.",
        ),
        (
            "ListItem",
            "Ciphers\nThe default is:\naes128-ctr,aes192-ctr,\naes256-ctr\nSee “PATTERNS”, ssh(1), and the -Q option.",
        ),
        ("Title", "OPTIONS"),
        (
            "ListItem",
            "-L [bind_address:]port:host:hostport, -L local_socket:remote_socket\nForwards a local port or socket.",
        ),
        ("ListItem", "-v\nVerbose mode."),
        ("Title", "TOKENS"),
        ("NarrativeText", "Keyword | Tokens\nHostname | %% and %h"),
        ("NarrativeText", "Host *.co.uk"),
    ]


def test_mdoc_is_told_from_man7_and_the_man7_reader_still_refuses_it() -> None:
    from ragkit.connectors.roff import man_elements
    from ragkit.errors import ParseError

    assert is_mdoc(PAGE) and not is_mdoc(".TH TAR 1\n.SH NAME\ntar \\- an archiver\n")
    with pytest.raises(ParseError, match="mdoc manual page"):
        man_elements(PAGE, "ssh_config.5")


def test_ignored_text_is_left_out_of_a_man7_page_too(tmp_path: Path) -> None:
    path = tmp_path / "gzip.1"
    path.write_text(".TH GZIP 1\n.SH NAME\ngzip \\- compress\n.ig\nnot printed\n..\nprinted\n", encoding="utf-8")
    assert [e.text for e in parse_file(path).elements] == ["NAME", "gzip - compress printed"]


@pytest.mark.parametrize("page", ["/usr/share/man/man5/ssh_config.5.gz", "/usr/share/man/man1/tmux.1.gz"])
def test_a_real_mdoc_page_reads_whole(page: str) -> None:
    # the page as Debian ships it; every keyword of ssh_config heads an entry, no macro name leaks into the text
    if not Path(page).exists():
        pytest.skip(f"{page} is not installed here")
    elements = mdoc_elements(gzip.decompress(Path(page).read_bytes()).decode(), Path(page).name)
    text = "\n".join(t for t, _, _ in elements)
    assert not any(f" {macro} " in text for macro in ("Fl", "Xo", "Xc", "Ns", "Sm", "Bl", "Op", "Pq"))
    if "ssh_config" in page:
        tags = {t.split("\n")[0] for t, kind, _ in elements if kind == "ListItem"}
        assert {"Host", "Match", "StrictHostKeyChecking", "XAuthLocation", "%C"} <= tags
        assert "(the default is ask)" not in text and "If this flag is set to ask (the default)" in text


def test_an_xo_tag_a_page_never_closes_ends_at_the_next_item() -> None:
    # ".It Fl L Xo" with no ".Xc": the tag must not swallow the rest of the page
    page = ".Dd x\n.Sh OPTIONS\n.Bl -tag\n.It Fl L Xo\n.Ar port\nForwards a port.\n.It Fl v\nVerbose.\n.El\n"
    assert [t for t, _, _ in mdoc_elements(page, "x.1")] == ["OPTIONS", "-L port Forwards a port.", "-v\nVerbose."]
