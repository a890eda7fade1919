"""`ragkit ingest`: files, folders and URLs into a knowledge base, on this machine or on Ray."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from ragkit.cli.common import (
    ACCESS_PANEL,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    DbOpt,
    JsonOpt,
    KbOpt,
    announce_stop,
    db_override,
    display,
    err,
    failure_reason,
    grants,
    out,
    plain_progress,
    plural,
    print_json,
    progress_bar,
    user_errors,
)
from ragkit.cli.scale import RayAddressOpt, RayOpt, check_ray_database, on_ray
from ragkit.errors import SourceError, UsageError

_STOPPING = "Stopping: saving the files already embedded (Ctrl-C again stops at once; what is saved stays)."


def ingest(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files and folders (read recursively), http(s) URLs, or SQL sources "
            "'sql:URL#table=T&id=COL&text=COL[,COL][&meta=COL,...]'.",
            show_default=False,
        ),
    ] = None,
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    urls: Annotated[
        Path | None, typer.Option("--urls", help="A file with one http(s) URL per line (# comments allowed).")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Only files matching this glob (repeatable), e.g. '*.md'.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip files matching this glob (repeatable), e.g. 'drafts/*'.")
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete documents that vanished from the given folders.")
    ] = False,
    json_field: Annotated[
        str | None, typer.Option("--json-field", help="Field holding the text of JSON/JSONL records [default: text]")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            help="KEY=VALUE stamped on each document written (repeatable), for --filter, e.g. tenant=acme.",
        ),
    ] = None,
    access_control: Annotated[
        bool,
        typer.Option(
            "--access-control",
            help="Create the KB deny by default (security.access_control = true in its ragkit.toml): every read "
            "names a reader (--as) and sees only documents granted to them. A new KB only; for an existing one "
            "set it in its ragkit.toml.",
            rich_help_panel=ACCESS_PANEL,
        ),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Who may read the documents of this run: group:NAME, user:NAME or public (repeatable).",
            rich_help_panel=ACCESS_PANEL,
            show_default=False,
        ),
    ] = None,
    acl: Annotated[
        Path | None,
        typer.Option(
            "--acl",
            help='ACL rules file (TOML): a [rules] table of "GLOB" = ["group:NAME", ...], e.g. "hr/" = '
            '["group:hr"]; a document gets the grants of every rule it matches, plus --allow.',
            rich_help_panel=ACCESS_PANEL,
            show_default=False,
        ),
    ] = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Parse, chunk, embed and index SOURCES into the knowledge base (created if missing).

    Re-running skips unchanged files (same size and mtime, or same content) and replaces changed ones. Files
    that cannot be parsed are reported and skipped; the exit code is then 3 (partial). Ctrl-C stops after the
    current batch, keeps what was committed, and exits 130; run the same command again to finish.

    --meta is stamped on unchanged documents too (no re-embedding); size and mtime are reserved keys. A new
    knowledge base is created only once its sources are found. Unreadable folders, broken links and link loops
    inside a folder are reported as skipped.

    Grants (--allow, --acl) replace a document's stored ones when they name it; a document they do not name
    keeps its grants (ragkit acl grant). On an access-controlled KB a document without any grant is read by
    admins only: ingest warns how many there are.
    """
    import ragkit
    from ragkit.access import load_acl_rules
    from ragkit.ingest import check_meta, check_sources
    from ragkit.kbdir import KbPaths

    with user_errors():
        all_sources = [*(sources or []), *_read_url_list(urls)]
        if not all_sources:
            raise UsageError("nothing to ingest: give files, folders, URLs or --urls FILE")
        stamp = _key_values(meta or [])
        check_meta(stamp)
        allowed = grants(allow, "--allow")  # checked before a new KB is created (and its embedder loaded)
        if acl is not None:
            load_acl_rules(acl)
        check_ray_database(kb, db, ray, ray_address)
        exists = KbPaths(kb.expanduser()).exists()
        if not exists:  # a typo must not leave an empty new KB behind
            check_sources(all_sources, include=include or (), exclude=exclude or ())
        progress = progress_bar("Ingesting", quiet=as_json)
        overrides: dict[str, Any] = {"ingest.json_text_field": json_field} if json_field else {}
        if access_control and not exists:
            overrides["security.access_control"] = True  # recorded in the new KB's ragkit.toml
        with ragkit.open(kb, **overrides, **db_override(db)) as base, progress:
            if access_control and not base.acl.enabled:
                raise UsageError(
                    f"--access-control only creates a new knowledge base; {kb} exists without it. To turn it on, "
                    f"set [security] access_control = true in {base.paths.config} (documents without a grant then "
                    "become admins-only: ragkit acl grant them first)"
                )
            on_ray(base, ray, ray_address)
            task = progress.add_task("", total=None)
            in_log = plain_progress("Ingesting (files)", quiet=as_json)

            def on_file(done: int, total: int, current: str) -> None:
                progress.update(task, completed=done, total=total, description=Path(current).name if current else "")
                in_log(done, total)

            with announce_stop(_STOPPING):
                report = base.ingest(
                    all_sources,
                    include=include or (),
                    exclude=exclude or (),
                    prune=prune,
                    progress=on_file,
                    meta=stamp,
                    allow=allowed,
                    acl_rules=acl,
                )
            enforced = base.acl.enabled
            ungranted = base.acl.ungranted() if enforced else 0
    if as_json:
        access = {"access_control": enforced, "ungranted": ungranted}
        print_json({**asdict(report), "partial": report.partial, "kb": str(kb), **access})
    else:
        out.print(
            f"{plural(report.files_seen, 'file')}: {report.ingested:,} ingested, {report.unchanged:,} unchanged, "
            f"{len(report.failed):,} failed; {plural(report.chunks_added, 'chunk')} added in {report.seconds:.1f} s"
            + (f"; {report.deleted:,} deleted" if prune else "")
        )
        for f in report.failed:
            err.print(f"skipped {display(f.uri)}: {failure_reason(f.uri, f.reason)}", style="yellow", markup=False)
        for note in report.notes:
            err.print(f"note {display(note.uri)}: {note.reason}", style="dim", markup=False)
        if report.reread:
            out.print(f"{plural(report.reread, 'unchanged document')} read again: an older ragkit had parsed them")
        if report.restamped:
            out.print(f"--meta applied to {plural(report.restamped, 'unchanged document')} (not re-embedded)")
        if report.interrupted:
            err.print(
                f"[yellow]Interrupted after {plural(report.ingested, 'file')} were saved; "
                "run the same command to finish.[/yellow]"
            )
        if ungranted:
            err.print(
                f"{plural(ungranted, 'document')} {'has' if ungranted == 1 else 'have'} no grant: only admins can "
                f"read {'it' if ungranted == 1 else 'them'}; ragkit acl grant TARGET --kb {kb} --to group:NAME "
                f"(ragkit acl show --kb {kb} lists them)",
                style="yellow",
                markup=False,
            )
        elif (allow or acl) and not enforced:
            err.print(
                f"note: the grants are stored but not enforced: {kb} has no access control (set [security] "
                "access_control = true in its ragkit.toml)",
                style="dim",
                markup=False,
            )
    if report.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _key_values(pairs: list[str]) -> dict[str, str]:
    """['tenant=acme', 'team=ops'] -> {'tenant': 'acme', 'team': 'ops'}; bad pairs are a user error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not re.fullmatch(r"[\w\-]+", key.strip()):
            raise UsageError(f"--meta takes KEY=VALUE with KEY made of letters, digits, _ or -; got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _read_url_list(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the URL list ({exc.strerror or exc})") from exc
    urls = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise SourceError(f"{path}: not an http(s) URL: {bad[0]}")
    return urls
