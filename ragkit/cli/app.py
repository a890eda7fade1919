"""`ragkit ingest | ask | search | info`. Library errors become one red line and exit code 1.

Exit codes: 0 success; 1 error (bad input, missing KB, missing model, a read of an access-controlled KB
without --as); 2 usage error; 3 ingest finished but some files failed (partial); 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ragkit import __version__
from ragkit.cli.common import (
    ACCESS_PANEL,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    HELP_NAMES,
    AdminOpt,
    AsOpt,
    DbOpt,
    DeviceOpt,
    GeneratorOpt,
    GroupsOpt,
    JsonOpt,
    KbOpt,
    ModelOpt,
    RagkitGroup,
    check_reader,
    db_override,
    device_override,
    display,
    err,
    failure_reason,
    first_use,
    grants,
    non_empty,
    out,
    parse_mode,
    plural,
    print_json,
    progress_bar,
    read_scope,
    reader,
    user_errors,
)
from ragkit.cli.scale import RayAddressOpt, RayOpt, check_ray_database, on_ray
from ragkit.cli.scale import compare as compare_kbs
from ragkit.errors import SourceError, UsageError

app = typer.Typer(
    cls=RagkitGroup,
    context_settings={"help_option_names": HELP_NAMES},
    no_args_is_help=True,
    add_completion=False,
    help="ragkit: turn documents into a knowledge base a local GPT answers from, with citations.",
)

KOpt = Annotated[
    int | None,
    typer.Option("--k", "-k", min=1, max=100, help="Chunks to retrieve [default: retrieval.top_k of ragkit.toml, 3]"),
]

FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="Only chunks matching FIELD OP VALUE (repeatable, ANDed): source=docs/*.md, doc in 3,4, page>=2, "
        "section=Intro*, kind=Table, ingested>=2026-01-01, modified<2026-06-01, tenant=acme, meta.KEY=VALUE.",
    ),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Retrieval: hybrid (dense + keyword), dense or keyword [default: retrieval.mode of ragkit.toml, hybrid]",
    ),
]


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


@app.command()
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

            def on_file(done: int, total: int, current: str) -> None:
                progress.update(task, completed=done, total=total, description=Path(current).name if current else "")

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
            f"{plural(report.files_seen, 'file')}: {report.ingested} ingested, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {plural(report.chunks_added, 'chunk')} added in {report.seconds:.1f} s"
            + (f"; {report.deleted} deleted" if prune else "")
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


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer from the knowledge base.")],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    k: KOpt = None,
    filters: FilterOpt = None,
    mode: ModeOpt = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Answer length limit in tokens [default: config]")
    ] = None,
    stream: Annotated[
        bool | None,
        typer.Option("--stream/--no-stream", help="Print tokens as they are generated [default: when a terminal]"),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Remove answer sentences that no source supports.")] = False,
    samples: Annotated[
        int | None,
        typer.Option("--samples", min=1, max=32, help="Draw N answers (temperature > 0), return the majority one."),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", exists=True, dir_okay=False, help="JSON Schema file; answer in JSON valid under it."),
    ] = None,
    min_relevance: Annotated[
        float | None,
        typer.Option(
            "--min-relevance",
            min=0.0,
            max=1.0,
            help="Abstain without asking the model when no source's cosine similarity to the question reaches this; "
            "0 turns it off [default: config; 0.40 for the bundled embedder]",
        ),
    ] = None,
    min_grounding: Annotated[
        float | None,
        typer.Option(
            "--min-grounding",
            min=0.0,
            max=1.0,
            help="Abstain after generating when the answer's key fact (a number, name, code word) is in no source, "
            "or only in a source sentence less similar to the question than this; 0 turns it off "
            "[default: config; 0.2 for the bundled embedder]",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="Abstain after generating when the model's own probability of the answer's key fact is below "
            "this (it was guessing); 0 turns it off [default: config; 0.2 for SmolLM2, off for other models]",
        ),
    ] = None,
    min_coverage: Annotated[
        float | None,
        typer.Option(
            "--min-coverage",
            min=0.0,
            max=1.0,
            help="Abstain after generating when the answer only repeats the question, or when the source sentence "
            "holding its key fact mentions less than this share of what the question asks (a taxi price copied "
            "from a sentence about hotels); 0 turns it off [default: config; 0.2, 0.45 for Qwen2.5-Coder-1.5B]",
        ),
    ] = None,
    generator: GeneratorOpt = None,
    model: ModelOpt = None,
    template: Annotated[
        Path | None,
        typer.Option("--template", exists=True, dir_okay=False, help="Prompt template file (TOML or JSON)."),
    ] = None,
    as_user: AsOpt = None,
    groups: GroupsOpt = None,
    admin: AdminOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION from the knowledge base with the local GPT, citing its sources as \\[n].

    Streams the answer as it is written when stdout is a terminal, then prints the checked answer if the
    citation check changed it, its sources, and warnings for sentences no source supports. `--json` prints
    everything: text, citations with locations, hits, abstained, flags, dropped/cut hits, token counts, timings.
    """
    import ragkit

    with user_errors():
        from ragkit.build import generator_overrides

        non_empty(question, "question")
        mode = parse_mode(mode)
        principal = reader(as_user, groups, admin)
        overrides: dict[str, Any] = dict(db_override(db)) | generator_overrides(kb, generator, model)
        if template:
            overrides["generator.template_file"] = str(template)
        json_schema = _read_schema(schema) if schema else None
        live = (out.is_terminal if stream is None else stream) and not as_json and (samples or 1) == 1
        pieces: list[str] = []

        def show(piece: str) -> None:
            pieces.append(piece)
            out.file.write(piece)
            out.file.flush()

        with ragkit.open(kb, create=False, principal=principal, **overrides) as base:
            check_reader(base, principal, as_json)
            first_use(base.config.generator.model, as_json)
            kwargs: dict[str, Any] = {
                "k": k,
                "max_new_tokens": max_tokens,
                "strict": strict or None,
                "samples": samples,
                "schema": json_schema,
                "filters": filters,
                "mode": mode,
                "min_relevance": min_relevance,
                "min_grounding": min_grounding,
                "min_confidence": min_confidence,
                "min_coverage": min_coverage,
            }
            if live:
                answer = base.ask(question, **kwargs, on_text=show)
            elif as_json or not err.is_terminal:
                answer = base.ask(question, **kwargs)
            else:
                with err.status("Retrieving and generating...", spinner="dots"):
                    answer = base.ask(question, **kwargs)
    if as_json:
        data = asdict(answer)
        for h in data["hits"]:
            h["chunk"]["location"] = display(h["chunk"]["uri"])
        print_json(data)
        return
    if live and pieces:
        out.file.write("\n")
        if " ".join("".join(pieces).split()) != " ".join(answer.text.split()):
            out.print("\nChecked answer:")
            out.print(answer.text or "(empty answer)", markup=False)
    else:
        out.print(answer.text or "(empty answer)", markup=False)
    if answer.agreement is not None:
        out.print(f"\n{answer.agreement:.0%} of {len(answer.samples)} samples agree with this answer.")
    cited = {c.n: c for c in answer.citations}
    if cited:
        out.print("\nSources:")
        for n in sorted(cited):
            c = cited[n]
            where = [display(c.uri)]
            if c.page is not None:
                where.append(f"page {c.page}")
            if c.section:
                where.append(f'section "{c.section}"')
            note = "" if c.kind == "cited" else f"  ({c.kind} by ragkit's citation check)"
            out.print(f"  [{n}] {', '.join(where)}{note}", markup=False)
    elif not answer.abstained:
        out.print("\nNo source supports this answer.")
    for sentence in answer.unsupported:
        verb = "removed (--strict)" if strict else "not supported by any source"
        err.print(f"[yellow]warning: {verb}: {sentence}[/yellow]")
    injected = [f for f in answer.flags if f.kind == "injection"]
    if injected:
        n = len(injected)
        err.print(f"[yellow]warning: {n} instruction-like sentence(s) in the sources were neutralised[/yellow]")
    echoed = [f for f in answer.flags if f.kind == "echoed_instruction"]
    if echoed:
        err.print(
            # "planted" would accuse a manual of an attack: its own orders ("please check the parameters") are
            # caught too, and they do not answer the question either
            f"[yellow]warning: removed {len(echoed)} answer sentence(s) copied from an instruction in source "
            f"[{echoed[0].source}] that does not answer the question[/yellow]"
        )
    gate = next((f for f in answer.flags if f.kind == "low_relevance"), None)
    if gate is not None:
        err.print(
            f"[dim]No source is close enough to the question ({gate.detail}), so the model was not asked. "
            "--min-relevance 0 asks it anyway.[/dim]"
        )
    withheld = next((f for f in answer.flags if f.kind in _WITHHELD), None)
    if withheld is not None:
        why, option = _WITHHELD[withheld.kind]
        err.print(
            f"[dim]{why}: {escape(withheld.detail)}. ragkit abstained; --json shows the withheld draft, "
            f"{option} 0 keeps it.[/dim]"
        )
    elif answer.abstained and gate is None and answer.generator:
        err.print(
            f"[dim]The model found no answer in the {len(answer.hits)} source(s) it was given; "
            "`ragkit search` shows them.[/dim]"
        )
    elif any(f.kind == "truncated" for f in answer.flags):  # a withheld draft's cut is moot
        err.print("[yellow]warning: the answer hit the token limit mid-sentence; raise --max-tokens[/yellow]")


# why ragkit withheld a generated answer (ragkit.withholding's flags) and the option that keeps it
_WITHHELD = {
    "restated": ("The model's answer only repeats the question", "--min-coverage"),
    "ungrounded": ("The sources do not hold the model's answer", "--min-grounding"),
    "off_question": ("The sources do not back the model's answer to this question", "--min-coverage"),
    "unsure": ("The model was guessing", "--min-confidence"),
}


def _read_schema(path: Path) -> dict[str, Any]:
    """The JSON Schema in a file, checked; ConfigError otherwise."""
    from ragkit.errors import ConfigError
    from ragkit.generation.constrained import check_schema

    try:
        return check_schema(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Text to search for.")],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    k: KOpt = None,
    filters: FilterOpt = None,
    mode: ModeOpt = None,
    nprobe: Annotated[
        int | None, typer.Option("--nprobe", min=1, help="IVF lists to visit (more = better recall, slower).")
    ] = None,
    ef_search: Annotated[
        int | None, typer.Option("--ef-search", min=1, help="HNSW search breadth (more = better recall, slower).")
    ] = None,
    mmr: Annotated[
        float | None,
        typer.Option("--mmr", min=0.0, max=1.0, help="Diversify hits by MMR: 1 = relevance only, 0 = diversity."),
    ] = None,
    no_rerank: Annotated[bool, typer.Option("--no-rerank", help="Skip the configured reranker.")] = False,
    device: DeviceOpt = None,
    as_user: AsOpt = None,
    groups: GroupsOpt = None,
    admin: AdminOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the chunks that best match QUERY, best first, without generating an answer.

    Scores: cosine similarity (dense), BM25 (keyword), reciprocal-rank fusion (hybrid) or the reranker's.
    """
    import ragkit

    with user_errors():
        non_empty(query, "query")
        mode = parse_mode(mode)
        principal = reader(as_user, groups, admin)
        over = db_override(db) | device_override(device)
        with ragkit.open(kb, create=False, principal=principal, **over) as base:
            check_reader(base, principal, as_json)
            hits = base.search(
                query,
                k=k,
                filters=filters,
                mode=mode,
                nprobe=nprobe,
                ef_search=ef_search,
                mmr=mmr,
                rerank=not no_rerank,
            )
            # the options as run: the configured k and mode when not given
            k, mode = k or base.config.retrieval.top_k, mode or base.config.retrieval.mode
            empty = "" if hits else _why_empty(base, filters or [])
    if as_json:
        hit_list = [{**asdict(h), "location": display(h.chunk.uri)} for h in hits]
        print_json({"query": query, "mode": mode, "k": k, "filters": filters or [], "hits": hit_list})
        return
    if empty:
        out.print(empty)
    for h in hits:
        c = h.chunk
        where = display(c.uri) + (f", page {c.page}" if c.page is not None else "")
        where += f', section "{c.section}"' if c.section else ""
        out.print(f"[bold]{h.rank}. {h.score:.3f}[/bold]  {where}", markup=True)
        snippet = " ".join(c.text.split())
        out.print(f"   {snippet[:300]}{'...' if len(snippet) > 300 else ''}", markup=False)


def _why_empty(base: Any, filters: list[str]) -> str:
    """Why a search found nothing: no chunk passes the filters, or none of those holds the query words. Counts
    only the chunks the reader may read (an access-controlled KB's count says nothing of the others)."""
    who = read_scope(base)
    matching = base.store.count(filters, who) if filters else base.store.counts(who)["chunks"]
    if not filters:
        if not matching and who is not None:
            return f"{who.name} may read no chunk of this knowledge base (ragkit acl show lists the grants)"
        return "the knowledge base holds no chunks" if not matching else "no chunk contains the query words"
    if not matching:
        return "no chunk matches these filters"
    return f"no chunk under these filters contains the query words ({plural(matching, 'chunk')} match the filters)"


@app.command()
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


@app.command()
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
    out.print(f"embedder: {emb.get('name')} ({emb.get('dim')}-d)  generator: {stats['generator']}")
    resolved = stats.get("index_resolved")
    out.print(f"index: {stats['index']}" + (f" ({resolved})" if resolved and resolved != stats["index"] else ""))
    out.print(f"database: {stats['database']}")
    if stats.get("access_control"):
        out.print(f"access control: on (deny by default); counts as read by {principal}", markup=False)
    for f in stats["failures"]:
        out.print(f"  failed {display(f['uri'])}: {failure_reason(f['uri'], f['reason'])}", markup=False)


@app.command()
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


@app.command()
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


from ragkit.cli.eval_cmd import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

from ragkit.cli.finetune_cmd import finetune_command, models_command  # noqa: E402

app.command("finetune")(finetune_command)
app.command("models")(models_command)

from ragkit.cli.acl_cmd import acl_app  # noqa: E402

app.add_typer(acl_app, name="acl")

from ragkit.cli.keys_cmd import keys_app  # noqa: E402
from ragkit.cli.serve_cmd import serve_command  # noqa: E402

app.add_typer(keys_app, name="keys")
app.command("serve")(serve_command)


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while idle (torch's default) starve the other threads on a busy or small machine:
    # the bundled GPT ran 3-5x slower on two shared cores (docs/benchmarks.md, Server). Set before torch loads;
    # an OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
