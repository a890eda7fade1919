"""`ragkit ask` and `ragkit search`: answers with citations, and the chunks retrieval finds."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ragkit.cli.common import (
    AdminOpt,
    AsOpt,
    DbOpt,
    DeviceOpt,
    DtypeOpt,
    FallbackMinVerifiedOpt,
    FallbackOpt,
    GeneratorOpt,
    GroupsOpt,
    JsonOpt,
    KbOpt,
    MinVerifiedOpt,
    ModelOpt,
    ModeOpt,
    OwnMinVerifiedOpt,
    ReleaseMinVerifiedOpt,
    check_model_option,
    check_reader,
    db_override,
    device_override,
    display,
    err,
    fallback_overrides,
    first_use_of_models,
    non_empty,
    out,
    parse_mode,
    plural,
    print_json,
    read_scope,
    reader,
    user_errors,
)
from ragkit.cli.overrides import SetOpt, parse_sets

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
            "from a sentence about hotels); 0 turns it off [default: config; 0.25, 0.45 for Qwen2.5-Coder-1.5B]",
        ),
    ] = None,
    fallback: FallbackOpt = None,
    min_verified: MinVerifiedOpt = None,
    fallback_min_verified: FallbackMinVerifiedOpt = None,
    own_min_verified: OwnMinVerifiedOpt = None,
    release_min_verified: ReleaseMinVerifiedOpt = None,
    generator: GeneratorOpt = None,
    dtype: DtypeOpt = None,
    model: ModelOpt = None,
    template: Annotated[
        Path | None,
        typer.Option("--template", exists=True, dir_okay=False, help="Prompt template file (TOML or JSON)."),
    ] = None,
    sets: SetOpt = None,
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
        overrides: dict[str, Any] = parse_sets(sets) | db_override(db)
        overrides |= generator_overrides(kb, generator, model, fallback)
        overrides |= fallback_overrides(min_verified, fallback_min_verified, own_min_verified, release_min_verified)
        overrides |= {"generator.dtype": dtype} if dtype else {}
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
            check_model_option(base, model)
            first_use_of_models(base.config.generator, as_json)
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
            how = _KINDS.get(c.kind, f"{c.kind} by ragkit's citation check")
            note = "" if c.kind == "cited" else f"  ({how})"
            out.print(f"  [{n}] {', '.join(where)}{note}", markup=False)
    elif not answer.abstained:
        out.print("\nNo source supports this answer.")
    read = {c.sentence for c in answer.citations if c.kind == "entry"}  # the released line says why: no words held
    for sentence in (s for s in answer.unsupported if s.rstrip(".") not in read):
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
    freed = next((f for f in answer.flags if f.kind == "released"), None)
    if freed is not None and not answer.abstained:  # a word-level check withheld it, the model's reading overruled it
        from ragkit.entry_reading import IN_PLACE, READ_ENTRY  # here: the CLI imports the engine only when it answers

        off = "--set generator.entry_release_min=0" if READ_ENTRY in freed.detail else "--release-min-verified 0"
        off = "--set generator.entry_answer_min=0" if IN_PLACE in freed.detail else off
        err.print(f"[dim]Delivered after a second look: {escape(freed.detail)}; {off} withholds it.[/dim]")
    second = next((f for f in answer.flags if f.kind == "fallback"), None)
    if second is not None and not answer.abstained:
        err.print(f"[dim]{escape(second.detail)} (--fallback none asks one model only).[/dim]")
    if withheld is not None:
        why, option = _why_withheld(withheld.kind, withheld.detail)
        err.print(
            f"[dim]{why}: {escape(withheld.detail)}. ragkit abstained; --json shows the withheld draft, "
            f"{option} keeps it.[/dim]"
        )
        if second is not None:
            err.print(f"[dim]{escape(second.detail)}.[/dim]")
    elif answer.abstained and gate is None and answer.generator:
        guessed = any(f.kind == "hedged" for f in answer.flags)
        hedged = " and then guessed (--json's raw_text has its words)" if guessed else ""
        err.print(
            f"[dim]The model found no answer in the {len(answer.hits)} source(s) it was given{hedged}; "
            "`ragkit search` shows them.[/dim]"
        )
    elif any(f.kind == "truncated" for f in answer.flags):  # a withheld draft's cut is moot
        err.print("[yellow]warning: the answer hit the token limit mid-sentence; raise --max-tokens[/yellow]")


_KINDS = {"entry": "the model read this source's entry of the option it names as the answer"}  # rule R, RU
# why ragkit withheld a generated answer (ragkit.withholding's flags) and the option that keeps it
_WITHHELD = {
    "unsourced": ("No source supports the model's answer", "--min-grounding 0"),
    "restated": ("The model's answer only repeats the question", "--min-coverage 0"),
    "ungrounded": ("The sources do not hold the model's answer", "--min-grounding 0"),
    "unquantified": ("The question asks for a number and the model's answer gives none", "--min-coverage 0"),
    "off_question": ("The sources do not back the model's answer to this question", "--min-coverage 0"),
    "no_default": ("The question asks for a default and no source calls the model's answer one", "--min-coverage 0"),
    "no_limit": ("The question asks for a limit and no source states the model's answer as one", "--min-coverage 0"),
    "unsure": ("The model was guessing", "--min-confidence 0"),
    "unverified": ("The fallback model does not find the answer in the sources", "--min-verified 0"),
}


# who read an answer and found it unstated (ragkit.verification: the floor's name ends the detail) and its option
_READERS = {
    "own_min_verified": ("The model does not find its own answer in the sources", "--own-min-verified 0"),
    "fallback_min_verified": (
        "The fallback model does not find its own answer in the sources",
        "--fallback-min-verified 0",
    ),
}


def _why_withheld(kind: str, detail: str) -> tuple[str, str]:
    """What withheld an answer, in words, and the option that keeps it."""
    reader = next((k for k in _READERS if f"({k} " in detail), None) if kind == "unverified" else None
    return _READERS[reader] if reader else _WITHHELD[kind]


def _read_schema(path: Path) -> dict[str, Any]:
    """The JSON Schema in a file, checked; ConfigError otherwise."""
    from ragkit.errors import ConfigError
    from ragkit.generation.constrained import check_schema

    try:
        return check_schema(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc


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
    sets: SetOpt = None,
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
        over = parse_sets(sets) | db_override(db) | device_override(device)
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
