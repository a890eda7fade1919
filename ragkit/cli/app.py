"""The `ragkit` command: the root group, and where each command module is registered.

Library errors become one red line and exit code 1.

Exit codes: 0 success; 1 error (bad input, missing KB, missing model, a read of an access-controlled KB
without --as); 2 usage error; 3 ingest finished but some files failed (partial); 130 interrupted by Ctrl-C
or SIGTERM (`timeout`, `docker stop` and systemd stop a command with it; a second one ends it at once).
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Annotated

import typer

from ragkit import __version__
from ragkit.cli.acl_cmd import acl_app
from ragkit.cli.ask_cmd import ask, search
from ragkit.cli.common import HELP_NAMES, RagkitGroup
from ragkit.cli.eval_cmd import eval_app
from ragkit.cli.finetune_cmd import finetune_command, models_command
from ragkit.cli.ingest_cmd import ingest
from ragkit.cli.kb_cmd import check, delete, info, reindex
from ragkit.cli.keys_cmd import keys_app
from ragkit.cli.serve_cmd import serve_command

app = typer.Typer(
    cls=RagkitGroup,
    context_settings={"help_option_names": HELP_NAMES},
    no_args_is_help=True,
    add_completion=False,
    help="ragkit: turn documents into a knowledge base a local GPT answers from, with citations.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """ragkit: ingest documents, then ask questions answered with citations by a local GPT."""


# Registered in the order `ragkit --help` lists them: the everyday commands first.
for _name, _command in [
    ("ingest", ingest),
    ("ask", ask),
    ("search", search),
    ("delete", delete),
    ("info", info),
    ("reindex", reindex),
    ("check", check),
]:
    app.command(_name)(_command)
app.add_typer(eval_app, name="eval")
app.command("finetune")(finetune_command)
app.command("models")(models_command)
app.add_typer(acl_app, name="acl")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve_command)


def stop_on_sigterm() -> None:
    """Make SIGTERM stop a command as Ctrl-C does: an ingest keeps the files in flight and says how to finish, an
    eval run can be resumed. A second SIGTERM ends the process at once. Main thread only."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    """Console-script entry point."""
    stop_on_sigterm()
    # OpenMP threads that spin while idle (torch's default) starve the other threads on a busy or small machine:
    # the bundled GPT ran 3-5x slower on two shared cores (docs/benchmarks.md, Server). Set before torch loads;
    # an OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
