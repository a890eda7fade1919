"""`ragkit delete | info | reindex | check`: look after a knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragkit.cli.common import (
    EXIT_ERROR,
    AdminOpt,
    AsOpt,
    DbOpt,
    DeviceOpt,
    GroupsOpt,
    JsonOpt,
    KbOpt,
    check_reader,
    db_override,
    device_override,
    display,
    err,
    failure_reason,
    out,
    plural,
    print_json,
    reader,
    user_errors,
)
from ragkit.cli.scale import RayAddressOpt, RayOpt, check_ray_database, on_ray
from ragkit.cli.scale import compare as compare_kbs


def delete(
    targets: Annotated[list[str], typer.Argument(help="Files, folders (everything under them) or uri globs.")],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the documents that would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete documents and their chunks from the knowledge base (the files on disk are not touched).

    Globs follow --filter source= (case-insensitive, a relative glob also matches a uri's tail). Each target
    that matches nothing is reported; the exit code is 1 when nothing was deleted.
    """
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        report = base.delete_documents(targets, dry_run=dry_run)  # an empty target is a usage error (exit 2)
    n = len(report.deleted)
    if as_json:
        print_json({**report.to_json(), "deleted": n, "uris": list(report.deleted)})
    else:
        for uri in report.deleted:
            out.print(f"{'would delete' if dry_run else 'deleted'} {display(uri)}", markup=False)
        for target in report.unmatched:
            err.print(f"{target}: no stored document matches", style="yellow", markup=False)
        out.print(f"{plural(n, 'document')} {'would be deleted (dry run)' if dry_run else 'deleted'}")
    if not n:
        raise typer.Exit(EXIT_ERROR)


def info(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    as_user: AsOpt = None,
    groups: GroupsOpt = None,
    admin: AdminOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what the knowledge base holds: documents, chunks, models, failed files.

    On an access-controlled KB the counts are of the documents the reader (--as, --admin) may read.
    """
    import ragkit

    with user_errors():
        principal = reader(as_user, groups, admin)
        with ragkit.open(kb, create=False, principal=principal, **db_override(db)) as base:
            check_reader(base, principal, as_json)
            stats = base.stats()
    if as_json:
        print_json(stats)
        return
    emb = stats["embedder"] or {}
    out.print(f"knowledge base: {stats['kb']}")
    out.print(f"documents: {stats['documents']}  chunks: {stats['chunks']}  failed: {stats['failed_documents']}")
    if stats["flagged_chunks"]:
        out.print(
            f"flagged: {stats['flagged_chunks']} chunk(s) hold instruction-like text (kind SuspectedInjection; "
            "neutralised in prompts; leave them out with --filter kind!=SuspectedInjection)"
        )
    second = f" (fallback {stats['fallback']})" if stats.get("fallback") else ""
    out.print(f"embedder: {emb.get('name')} ({emb.get('dim')}-d)  generator: {stats['generator']}{second}")
    resolved = stats.get("index_resolved")
    where = f"; searches on the {'GPU' if stats['index_device'] == 'cuda' else 'CPU'}"
    if stats["index_gpu_problem"]:
        where += f": FAISS cannot use the GPU here ({stats['index_gpu_problem']})"
    shown = f" ({resolved}{where})" if resolved and resolved != stats["index"] else f" ({where[2:]})"
    out.print(f"index: {stats['index']}{shown}", markup=False)
    out.print(f"database: {stats['database']}")
    if stats.get("access_control"):
        out.print(f"access control: on (deny by default); counts as read by {principal}", markup=False)
    for f in stats["failures"]:
        out.print(f"  failed {display(f['uri'])}: {failure_reason(f['uri'], f['reason'])}", markup=False)


def reindex(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    spec: Annotated[
        str | None,
        typer.Option(
            "--spec",
            help="FAISS index to build: auto, Flat, HNSW32, IVF1024,Flat, IVF4096,PQ32, ... (FAISS factory "
            "grammar); saved in ragkit.toml [default: the configured one]",
        ),
    ] = None,
    device: DeviceOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the vector index from the vectors stored in SQL (no re-embedding), e.g. to change its type.

    With --ray the index is trained here once and filled in shards by Ray tasks, then merged (the same index)."""
    import ragkit

    with (
        user_errors(),
        ragkit.open(kb, create=False, **db_override(db), **device_override(device)) as base,
        err.status("Rebuilding the vector index...", spinner="dots"),
    ):
        check_ray_database(kb, db, ray, ray_address)
        on_ray(base, ray, ray_address)
        result = base.reindex(spec)
    if as_json:
        print_json(result)
        return
    trained = f", trained on {result['trained_on']:,} vectors" if result["trained_on"] else ""
    out.print(
        f"index rebuilt: {result['resolved']} ({result['index']}), {result['vectors']:,} vectors{trained}, "
        f"{result['seconds']:.1f} s"
    )
    if "untrained" in result["index"]:
        err.print(
            "the index is untrained: vectors stay in SQL and searches are exact until there are enough to train "
            "it (ragkit check counts them as waiting)",
            style="dim",
            markup=False,
        )


def check(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    no_repair: Annotated[bool, typer.Option("--no-repair", help="Only report; change nothing.")] = False,
    compare_with: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Compare with another KB instead (documents, chunks, vectors, top-10 results); exit 1 if they differ.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify that the vector and keyword indexes agree with SQL (the source of truth), and repair them.

    Exit code 0 when consistent (or repaired), 1 when inconsistencies remain (--no-repair).

    A repair is verified again before it is reported. An unreadable index.faiss counts as missing and is rebuilt;
    HNSW tombstones (deleted ids it cannot drop) are counted apart and are no inconsistency.

    --compare OTHER_KB checks nothing and repairs nothing: it compares the two KBs document by document (by uri),
    chunk by chunk (by uri and position), vectors within 1e-5 per component, and the top-10 of 20 queries drawn from
    this KB's chunks (ties compared as sets); exit 1 when they differ.
    """
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        if compare_with is not None:  # two KBs side by side (e.g. a Ray build and a single-process one)
            if not compare_kbs(base, compare_with, as_json):
                raise typer.Exit(EXIT_ERROR)
            return
        report = base.check(repair=not no_repair)
    if as_json:
        print_json({"kb": str(base.root), **report.to_json()})
    else:
        tombstones = f"  tombstones: {report.tombstones} (deleted, hidden)" if report.tombstones else ""
        out.print(
            f"SQL chunks: {report['sql_chunks']:,}  FAISS vectors: {report['faiss_vectors']:,}  "
            f"missing: {report['missing_from_faiss']}  extra: {report['extra_in_faiss']}  "
            f"duplicates: {report['duplicate_ids']}  keyword index: {'ok' if report['keyword_index_ok'] else 'BAD'}"
            + tombstones
            + (f"  waiting for training: {report.waiting_for_training:,}" if report.waiting_for_training else "")
        )
        for warning in report.warnings:
            err.print(warning, style="yellow", markup=False)
        if report["repaired"]:
            out.print("[green]repaired[/green]", markup=True)
        elif report["ok"]:
            out.print("[green]consistent[/green]", markup=True)
    if not report["ok"]:
        if not as_json:
            todo = "run ragkit check without --no-repair" if no_repair else "run ragkit reindex"
            err.print(f"[red]Error: the indexes disagree with SQL; {todo}[/red]")
        raise typer.Exit(EXIT_ERROR)
