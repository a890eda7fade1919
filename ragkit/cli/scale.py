"""CLI pieces of the scale-out on Ray: the --ray / --ray-address options, the PostgreSQL guard, `check --compare`.

Kept out of app.py so the commands gain a line each. `--ray` is a flag and the address a separate option: an
option with an optional value would swallow the next argument (`ragkit ingest --ray docs/` would take docs/
for a cluster address).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ragkit.cli.common import err, out, print_json

SCALE_PANEL = "Scale-out (Ray)"

RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run on a Ray cluster (extra ragkit[ray]; the KB's database must be PostgreSQL): --ray-address, "
        "else $RAY_ADDRESS, else a local cluster on this machine. README: Scale-out.",
        rich_help_panel=SCALE_PANEL,
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster: auto, HOST:6379 or ray://HOST:10001 (implies --ray) [default: $RAY_ADDRESS]",
        rich_help_panel=SCALE_PANEL,
        show_default=False,
    ),
]


def check_ray_database(kb: Path, db: str | None, ray: bool, address: str | None) -> None:
    """Refuse --ray on SQLite before anything is created or loaded (ConfigError: one line, exit 1)."""
    if not (ray or address):
        return
    from ragkit.config import load_config
    from ragkit.errors import ConfigError
    from ragkit.kbdir import KbPaths

    paths = KbPaths(kb.expanduser())
    url = db or (load_config(paths.config).database_url if paths.exists() else None) or "sqlite"
    if not url.startswith("postgresql"):
        raise ConfigError(
            "--ray needs a PostgreSQL database (--db postgresql+psycopg://...): Ray workers on other machines "
            "write to it, and SQLite is a file on one machine with one writer"
        )


def on_ray(base: Any, ray: bool, address: str | None) -> None:
    """Make this opened KB run its ingest / reindex / eval on Ray (for this command only: not saved)."""
    if ray or address:
        from ragkit import build

        base.config = build.with_runtime(base.config, "ray", address)


def compare(base: Any, other_path: Path, as_json: bool) -> bool:
    """`check --compare OTHER_KB`: print what differs between the two KBs; True when they are the same."""
    import ragkit
    from ragkit.compare import compare_stores

    with ragkit.open(other_path, create=False) as other:
        report = compare_stores(base.store, other.store)
    if as_json:
        print_json({"kb": str(base.root), "other": str(other_path), **report.to_json()})
        return report.same
    out.print(
        f"documents: {report.documents_a:,} vs {report.documents_b:,} (only here {report.documents_only_in_a}, "
        f"only there {report.documents_only_in_b}, changed {report.documents_changed})  "
        f"chunks: {report.chunks_a:,} vs {report.chunks_b:,} (only here {report.chunks_only_in_a}, only there "
        f"{report.chunks_only_in_b}, changed {report.chunks_changed})  vectors over {report.vector_tolerance:g}: "
        f"{report.vectors_over_tolerance} (max |diff| {report.max_vector_delta:.1e})  top-{report.k} of "
        f"{report.queries} queries differ: {report.results_differ}"
    )
    for line in report.differences:
        err.print(line, style="yellow", markup=False)
    out.print("[green]same[/green]" if report.same else "[red]different[/red]", markup=True)
    return report.same
