"""KnowledgeBase: the facade the CLI, evals, finetune, the server and users go through. It only delegates.

The store (`ragkit.store`) owns SQL, FAISS and the keyword index in step; `ragkit.build` reads the config and
builds components and options; `ragkit.answering` turns hits into a checked answer; workflows take the KB as an
argument. Heavy parts load on first use (`ragkit search` never loads the GPT), so opening is cheap."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragkit import build, kbdir
from ragkit._version import __version__
from ragkit.access import Principal
from ragkit.answering import AnswerOptions, answer_question, measured_relevance, relevance_gate
from ragkit.apikeys import ApiKeys
from ragkit.config import RagkitConfig, dump_config
from ragkit.documents import Documents
from ragkit.errors import KnowledgeBaseError
from ragkit.fallback import with_second_opinion
from ragkit.fsutil import atomic_write
from ragkit.indexes.engine import make_engine
from ragkit.indexes.faiss_index import FaissIndex
from ragkit.indexes.filters import FilterSpec
from ragkit.indexes.sql_store import SqlStore
from ragkit.ingest import ProgressFn, run_ingest
from ragkit.kbdir import AdapterInfo, KbPaths
from ragkit.lazy import Lazy
from ragkit.permissions import AccessControl
from ragkit.protocols import Embedder, Generator, KeywordIndex, Reranker
from ragkit.safety import SUSPECTED_INJECTION
from ragkit.store import Store
from ragkit.types import Answer, CheckReport, Chunk, DeleteReport, Hit, IngestReport, ReindexReport
from ragkit.verification import read_own

if TYPE_CHECKING:
    from ragkit.evals.runner import EvalRun
    from ragkit.finetune import FinetuneOptions, FinetuneResult


class KnowledgeBase:
    """A directory holding documents, chunks, vectors and config; see docs/architecture.md."""

    def __init__(
        self, root: Path, config: RagkitConfig, manifest: dict[str, Any], principal: Principal | None = None
    ) -> None:
        self.root = root
        self.principal = principal  # who reads (ragkit.access); required when security.access_control is on
        self.paths = KbPaths(root)
        self.config = config
        lock = threading.RLock()  # one lock for every component: see ragkit.lazy
        self._embedder = Lazy(lambda: build.embedder_from(self.config, self.manifest, self.root), lock)
        self._generator = Lazy(lambda: build.generator_from(self.config, self.root), lock)
        self._fallback = Lazy(lambda: build.fallback_from(self.config), lock)
        self._reranker = Lazy(lambda: build.reranker_from(self.config), lock)
        self.store = Store(
            SqlStore(make_engine(build.database_url(config, self.paths))),
            self.paths,
            index_spec=config.index.spec,
            device=config.index.device,
            manifest=dict(manifest),
            embedder=self._embedder.get,
            reranker=self._reranker.get,
        )
        self.acl = AccessControl(self.store, config.security.access_control)  # grants, scopes, audit log
        self.keys = ApiKeys(self.store)  # API keys -> principals, for ragkit serve

    # -- components -------------------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        """manifest.json as this KB sees it (the store keeps its index entry true)."""
        return self.store.manifest

    @manifest.setter
    def manifest(self, value: dict[str, Any]) -> None:
        self.store.manifest = dict(value)

    @property
    def embedder(self) -> Embedder:
        return self._embedder.get()

    @embedder.setter
    def embedder(self, value: Embedder) -> None:
        """Use an embedder already in memory (another KB's, or a wrapper around it)."""
        self._embedder.set(value)

    @property
    def generator(self) -> Generator:
        return self._generator.get()

    @property
    def index(self) -> FaissIndex:
        return self.store.index

    @property
    def keyword(self) -> KeywordIndex:
        return self.store.keyword

    @property
    def reranker(self) -> Reranker | None:
        """The configured cross-encoder (retrieval.reranker), loaded on first use; None when not configured."""
        return self._reranker.get()

    # -- write ------------------------------------------------------------------------------------

    def ingest(
        self,
        sources: Sequence[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        progress: ProgressFn | None = None,
        meta: dict[str, str] | None = None,
        allow: Sequence[str] = (),
        acl_rules: str | Path | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        """Parse, chunk, embed and index files and folders. Unchanged files are skipped (not re-embedded).
        include/exclude: globs on paths relative to each folder. prune: delete stored documents the given folders no
        longer hold. meta: {key: value} stamped on every document, unchanged ones too (for filters such as
        tenant=acme; not size or mtime). allow / acl_rules: who may read them (group:NAME, user:NAME, public; an ACL
        rules file of path globs), see ragkit.access. Unreadable files are reported, the rest go on. Ctrl-C, or
        setting `cancel`, stops after the files being embedded; what is committed stays (cancel: raises Cancelled)."""
        settings = build.ingest_settings(self.config, meta, allow, acl_rules)
        with self._writing():
            try:
                report = run_ingest(
                    sources,
                    store=self.store,
                    embedder=self._embedder.get,
                    settings=settings,
                    include=include,
                    exclude=exclude,
                    prune=prune,
                    progress=progress,
                    cancel=cancel,
                )
                self.store.maybe_upgrade()
                return report
            finally:
                self.acl.record_ingest(sources, settings.acl)  # a stopped run's grants were committed too
                self._write_manifest()

    def delete(self, targets: Sequence[str | Path]) -> int:
        """Delete documents (see delete_documents) and return how many went."""
        return len(self.delete_documents(targets).deleted)

    def delete_documents(self, targets: Sequence[str | Path], *, dry_run: bool = False) -> DeleteReport:
        """Delete documents named by a path (a file, everything under a folder) or a uri glob as --filter source=
        reads it (an empty target: UsageError). Returns their uris and the unmatched targets. dry_run: only say."""
        if dry_run:
            self.acl.check_writer(self.principal)
            return self.store.match_targets(targets)
        with self._writing():
            report = self.store.match_targets(targets)
            chunks = self.store.delete_documents(report.deleted) if report.deleted else 0
            self.store.save()
            self._write_manifest()
        return DeleteReport(deleted=report.deleted, unmatched=report.unmatched, chunks=chunks)

    def reindex(self, spec: str | None = None) -> ReindexReport:
        """Rebuild FAISS from SQL's vectors, e.g. to switch type; spec: a factory spec or "auto", saved once built."""
        with self._writing():
            report = self.store.rebuild(spec or self.config.index.spec, build.index_fill(self.config))  # then swapped
            if spec and spec != self.config.index.spec:
                self.config = self.config.model_copy(
                    update={"index": self.config.index.model_copy(update={"spec": spec})}
                )
                atomic_write(self.paths.config, dump_config(self.config))
            self._write_manifest()
            return report

    def check(self, repair: bool = True) -> CheckReport:
        """Verify that FAISS and the keyword index agree with SQL (the truth); repair them when asked (CheckReport)."""
        report = self.store.check(repair=False)
        if report.ok or not repair:
            return report
        with self._writing():
            report = self.store.check(repair=True)
            self._write_manifest()
        return report

    def _writing(self) -> AbstractContextManager[None]:
        self.acl.check_writer(self.principal)  # a reader's view of an access-controlled KB does not write
        return kbdir.writing(self.paths)

    def _write_manifest(self) -> None:
        self.manifest = {**self.manifest, "counts": self.store.counts(), "ragkit_version": __version__}
        kbdir.write_manifest(self.paths, self.manifest)

    # -- read -------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        filters: FilterSpec = None,
        mode: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: bool = True,
        mmr: float | None = None,
    ) -> list[Hit]:
        """The k best chunks for the query, best first. See search_batch for the options."""
        return self.search_batch(
            [query], k, filters=filters, mode=mode, nprobe=nprobe, ef_search=ef_search, rerank=rerank, mmr=mmr
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int | None = None,
        *,
        filters: FilterSpec = None,
        mode: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: bool = True,
        mmr: float | None = None,
    ) -> list[list[Hit]]:
        """Hits for each query: (nq,) queries -> nq ranked lists of at most k hits.

        filters: 'FIELD OP VALUE' strings or a {field: value} mapping (ragkit/indexes/filters.py), applied
        inside the search, so k hits come back whenever k chunks match. mode: hybrid, dense or keyword (None =
        retrieval.mode). nprobe / ef_search: IVF / HNSW speed-recall knobs for this call. rerank: use the
        configured cross-encoder. mmr: MMR lambda in [0, 1] for diverse hits (None = config).
        """
        if not queries or not all(q.strip() for q in queries):
            raise KnowledgeBaseError("the query is empty; ask something")
        knobs = {"nprobe": nprobe, "ef_search": ef_search, "rerank": rerank, "mmr": mmr}
        options = build.search_options(self.config.retrieval, k=k, filters=filters, mode=mode, **knobs)
        return self.store.search_batch(queries, options, self.acl.scope(self.principal, queries))

    def ask(
        self,
        question: str,
        k: int | None = None,
        max_new_tokens: int | None = None,
        *,
        strict: bool | None = None,
        samples: int | None = None,
        schema: dict[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        filters: FilterSpec = None,
        mode: str | None = None,
        min_relevance: float | None = None,
        min_grounding: float | None = None,
        min_confidence: float | None = None,
        min_coverage: float | None = None,
        min_verified: float | None = None,
    ) -> Answer:
        """Retrieve, pack under the token budget, generate, and verify the answer's citations. filters / mode: as
        for search (only chunks passing the filters can be sources). strict: drop sentences no source supports.
        samples: draw N answers, return the majority one with its agreement. schema: a JSON Schema the answer must
        satisfy (constrained decoding). on_text: called with each piece of text as the model writes it. min_*:
        GeneratorConfig's abstention floors (relevance before generating; the others withhold a generated answer,
        ragkit.withholding); 0 = off, None = the config's value. A withheld draft may get a second opinion."""
        given = dict(min_relevance=min_relevance, min_grounding=min_grounding, min_confidence=min_confidence)
        given |= dict(min_coverage=min_coverage, min_verified=min_verified, max_new_tokens=max_new_tokens)
        given |= dict(strict=strict, samples=samples)  # None keeps the config's value
        options = build.with_schema(self.answer_options(**given), schema)
        t0 = time.perf_counter()
        hits = self.search(question, k, filters=filters, mode=mode)
        return self.answer(question, hits, options, on_text=on_text, retrieve_s=time.perf_counter() - t0)

    def answer_options(self, **overrides: Any) -> AnswerOptions:
        """The generator config as AnswerOptions (min_relevance resolved for this KB's embedder); None keeps it."""
        return build.answer_options(self.config, **overrides)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        options: AnswerOptions | None = None,
        *,
        on_text: Callable[[str], None] | None = None,
        retrieve_s: float = 0.0,
        relevance: float | None = None,
    ) -> Answer:
        """Answer from hits already retrieved (best first) with this KB's generator; see `ask` (None: answer_options).
        relevance: the question's best cosine to the hits when the caller measured it (measured_relevance)."""
        options = options or self.answer_options()
        relevance = measured_relevance(question, hits, self._embedder.get) if relevance is None else relevance
        gated = relevance_gate(question, hits, relevance, options, retrieve_s=retrieve_s)
        if gated is not None:
            build.check_generator(self.config, self.root)  # the GPT is not loaded, but a typo must still fail
            return gated
        gen, embed = self.generator, (lambda texts: self.embedder.embed(texts))
        first = answer_question(
            question, hits, gen, options, on_text=on_text, retrieve_s=retrieve_s, relevance=relevance, embed=embed
        )  # a withheld draft gets a second opinion when generator.fallback names a model (ragkit.fallback)
        first = read_own(first, gen, options)  # generator.own_min_verified: off unless set, and with a fallback
        return with_second_opinion(first, hits, build.fallback_options(self.config, options), self._fallback.get, embed)

    def stats(self) -> dict[str, Any]:
        """Counts, models and failures recorded in the KB (of the documents the principal may read)."""
        who = self.acl.scope(self.principal, "stats")
        return {
            "kb": str(self.root),
            **self.store.counts(who),
            "flagged_chunks": self.store.count(f"kind={SUSPECTED_INJECTION}", who),
            "embedder": self.manifest.get("embedder"),
            "generator": self.config.generator.model,
            "fallback": self.config.generator.fallback,  # asked when the checks withhold the generator's draft
            "index": self.config.index.spec,
            "index_resolved": self.manifest.get("index", {}).get("resolved"),
            **FaissIndex.device_report(self.config.index.device),
            "database": self.store.url,  # password hidden
            "failures": [{"uri": u, "reason": r} for u, r in self.store.failures(who)],
            "access_control": self.acl.enabled,
        }

    def chunk_ids(self) -> np.ndarray:
        """(n,) int64 ids of the chunks the principal may read, ascending (for sampling: finetune, evals)."""
        return self.store.chunk_ids(self.acl.scope(self.principal, "chunk ids"))

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """{id: Chunk} for those of `ids` the principal may read."""
        return self.store.chunks(ids, self.acl.scope(self.principal, "chunks"))

    @property
    def documents(self) -> Documents:
        """The stored documents the principal may read: list(), count(), get(id), text(id) (ragkit.documents)."""
        return Documents(self.store, self.acl, self.principal)

    def as_principal(self, principal: Principal | None) -> KnowledgeBase:
        """A view of this KB that reads as `principal`; it shares models and connections (close this one)."""
        view = copy.copy(self)
        view.principal = principal
        view.close = lambda: None  # type: ignore[method-assign]  # the connections are this KB's
        return view

    # -- workflows: each takes this KB (sentence-transformers' model.evaluate(evaluator) shape) ----------

    def evaluate(
        self,
        dataset: str | Path | Any,
        *,
        name: str | None = None,
        limit: int | None = None,
        workers: int = 1,
        judge: str = "minilm-lexical",
        progress: Any = None,
        resume: bool = True,
        **options: Any,
    ) -> EvalRun:
        """Run a dataset (.jsonl, SQuAD .json, BEIR folder, "halueval-qa[:N]", a Dataset) as this KB's principal into
        runs/<timestamp>-<name>/; resume an interrupted run of the same settings. options: EvalOptions fields."""
        from ragkit.evals.runner import EvalOptions, run_eval

        self.acl.scope(self.principal, f"eval {dataset}")  # refused once here, not once per question
        opts = EvalOptions(judge=judge, **options)
        return run_eval(
            self, dataset, name=name, limit=limit, workers=workers, options=opts, progress=progress, resume=resume
        )

    def finetune(
        self,
        options: FinetuneOptions | None = None,
        *,
        train_file: str | Path | None = None,
        progress: Any = None,
        overwrite: bool = False,
    ) -> FinetuneResult:
        """LoRA-tune this KB's local GPT and save the adapter as kb/models/NAME/; see ragkit.finetune."""
        from ragkit.finetune import FinetuneOptions, finetune

        opts = options or FinetuneOptions()
        return finetune(self, opts, train_file=train_file, progress=progress, overwrite=overwrite)

    def adapters(self) -> list[AdapterInfo]:
        """The fine-tuned adapters in kb/models/, oldest first."""
        return kbdir.list_adapters(self.root)

    def with_adapter(self, name: str | None) -> KnowledgeBase:
        """This KB answering with an adapter (kb/models/NAME or a folder; None = base); close it when done."""
        gen_cfg = self.config.generator.model_copy(update={"adapter": name})
        config = self.config.model_copy(update={"generator": gen_cfg})
        return KnowledgeBase(self.root, config, dict(self.manifest), self.principal)

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
