"""What every ingest runtime shares: plan the run, parse one item, finish the run.

`ragkit.ingest` (this process) and `ragkit.distributed` (a Ray cluster) both plan with `plan_ingest` (list the
sources, skip what is unchanged by size and mtime), parse each item with `parse_item` (pure, picklable in and
out, never raises for bad input) and end with `finish_ingest` (metadata, declared grants, --prune), so the two
runtimes cannot drift apart in what they skip, store or report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ragkit.access import default_actor
from ragkit.chunking import chunk_document
from ragkit.connectors import Connector, SourceItem, SourceOptions, open_source
from ragkit.connectors.parsing import content_hash
from ragkit.errors import ParseError
from ragkit.indexes.sql_store import DocState
from ragkit.ingest_settings import IngestSettings, check_meta
from ragkit.protocols import CountsTokens
from ragkit.safety import flag_injections
from ragkit.types import ChunkSpan, Document, FileFailure

if TYPE_CHECKING:
    from ragkit.store import Store


@dataclass
class Plan:
    """The run's work: the items to read (`todo`) and what planning already settled."""

    connectors: list[Connector]
    listed: dict[str, SourceItem]  # every listed item by uri
    states: dict[str, DocState]  # what the store held before the run
    todo: list[SourceItem]
    failed: list[FileFailure]  # unsupported, unreadable, and untouched files that failed before
    kept: list[str]  # unchanged documents: this run's meta and grants are stamped on them too
    unchanged: int
    done: int  # items settled by planning
    files_seen: int
    reread: int = 0  # unchanged files in `todo` because an older parser read them
    notes: list[FileFailure] = field(default_factory=list)  # per folder: files of types ragkit does not read

    @property
    def total(self) -> int:
        return len(self.listed)


def source_options(settings: IngestSettings, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> SourceOptions:
    return SourceOptions(
        engine=settings.parser,
        json_field=settings.json_field,
        max_bytes=settings.max_file_bytes,
        timeout_s=settings.url_timeout_s,
        include=tuple(include),
        exclude=tuple(exclude),
    )


def plan_ingest(
    sources: Sequence[str | Path],
    store: Store,
    settings: IngestSettings,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Plan:
    """List every source before writing anything (a bad source fails the run early) and decide what to read: an
    item whose known size and mtime match the stored document is skipped without being read (a file that failed
    before and is untouched is reported again without re-parsing it, unless a newer parser reads its format)."""
    check_meta(settings.meta)
    options = source_options(settings, include, exclude)
    connectors = [open_source(src, options) for src in sources]
    listed: dict[str, SourceItem] = {}
    for connector in connectors:
        for source_item in connector.items():
            if not store.paths.holds_own_file(source_item.uri):  # `ingest . --kb ./kb`: not its manifest, reports
                listed.setdefault(source_item.uri, source_item)  # the same file via two folders counts once
    unsupported = [u for c in connectors for u in c.unsupported]
    failed = [FileFailure(u, f"unsupported file type {Path(u).suffix or '(none)'}") for u in unsupported]
    skipped = [FileFailure(u, why) for c in connectors for u, why in getattr(c, "skipped", ())]
    failed += skipped  # unreadable folders, broken links, link loops: reported, never silently left out
    states = store.document_states()
    kept: list[str] = []
    todo: list[SourceItem] = []
    unchanged = done = reread = 0
    for source_item in listed.values():
        state = states.get(source_item.uri)
        same_stat = state and source_item.mtime and (state.size, state.mtime) == (source_item.size, source_item.mtime)
        if state and state.parser < source_item.parser:
            # read (or failed) by an older parser: parse it again although its bytes are the same
            states[source_item.uri] = replace(state, content_hash="")
            todo.append(source_item)
            reread += bool(same_stat)
        elif state and same_stat and state.status == "ok":
            unchanged += 1
            done += 1
            kept.append(source_item.uri)
        elif state and same_stat:  # failed last time and untouched since: same failure, no second parse
            failed.append(FileFailure(source_item.uri, state.error or "failed in an earlier ingest"))
            done += 1
        else:
            todo.append(source_item)
    files_seen = len(listed) + len(unsupported)
    notes = [FileFailure(u, note) for c in connectors for u, note in getattr(c, "left_out", ())]
    return Plan(connectors, listed, states, todo, failed, kept, unchanged, done, files_seen, reread, notes)


@dataclass
class Parsed:
    """What parsing one item produced; picklable, so a parser process (or a Ray actor) can send it back."""

    digest: str = ""
    doc: Document | None = None
    spans: list[ChunkSpan] = field(default_factory=list)
    failure: str | None = None
    unchanged: bool = False
    reread: bool = False  # same bytes, parsed again: an older parser had read them (a URL; files: Plan.reread)


def parse_item(
    name: str,
    size: int,
    read: Callable[[], bytes],
    parse: Callable[[bytes], Document],
    state: DocState | None,
    counter: CountsTokens,
    s: IngestSettings,
    parser: Callable[[], int] | None = None,
) -> Parsed:
    """Read, hash, parse and chunk one item. Never raises for bad input. parser: the item's parser version once
    read (SourceItem.parser_read): a body with the stored hash is parsed again when an older parser read it."""
    out = Parsed()
    if size > s.max_file_bytes:
        out.failure = (
            f"{name}: {size / 1e6:.1f} MB is over the {s.max_file_bytes / 1e6:g} MB limit "
            "(raise ingest.max_file_mb to include it)"
        )
        return out
    try:
        data = read()
        out.digest = content_hash(data)
        if state is not None and state.status == "ok" and state.content_hash == out.digest:
            if parser is None or state.parser >= parser():
                out.unchanged = True  # touched (new mtime) or re-fetched, same bytes
                return out
            out.reread = True
        out.doc = parse(data)
        spans = chunk_document(out.doc, counter.count_tokens, counter.token_offsets, s.max_tokens, s.overlap)
        out.spans = flag_injections(spans)
        if not out.spans:
            raise ParseError(f"{name}: no text to index")
    except ParseError as exc:
        out.failure = str(exc)
    except Exception as exc:  # a parser bug on one item must not end the run
        out.failure = f"{name}: unexpected {type(exc).__name__}: {exc}"
    return out


def finish_ingest(
    store: Store, plan: Plan, settings: IngestSettings, prune: bool, recorded: Sequence[str] = ()
) -> tuple[int, int]:
    """After the writes: stamp this run's metadata and declared grants on the documents it did not rewrite, and
    delete (prune) what vanished from the sources. recorded: uris whose failure this run stored. Returns
    (documents restamped, documents deleted)."""
    kept = plan.kept
    restamped = deleted = 0
    if settings.meta and kept:
        restamped = store.update_meta(kept, dict(settings.meta))
    # unchanged files take this run's grants too (the rules file decides), and so do files that failed: their
    # failure is theirs to see, and a fixed file re-ingested without a declaration keeps what it was given
    if settings.acl.declared and (kept or recorded):
        declared = {u: g for u in [*kept, *recorded] if (g := settings.acl.grants_for(u)) is not None}
        store.declare_grants(declared, default_actor())
    if prune:
        gone = _vanished(plan.connectors, set(plan.listed), plan.states)
        store.delete_documents(gone)
        deleted = len(gone)
    return restamped, deleted


def _vanished(connectors: Sequence[Connector], present: set[str], states: dict[str, DocState]) -> list[str]:
    """Stored documents inside a source's scope (a folder, a table) that the source no longer holds."""
    scopes = [c.scope for c in connectors if c.scope]
    return [uri for uri in states if uri not in present and any(uri.startswith(scope) for scope in scopes)]
