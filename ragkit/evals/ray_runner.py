"""`ragkit eval --ray`: the questions of a run in a Ray actor pool; the run folder is written as a local run's.

The coordinator (run_eval) plans, fingerprints and resumes exactly as a local run and stays the only writer of
samples.jsonl; each actor opens the KB once (ragkit.open on the shared KB folder and PostgreSQL, with the
coordinator's config, manifest and reader: the facade's own class, `type(kb)`, reopens it, as
`with_adapter` does) and loads the embedder, and the GPT and judge when the run generates, once.
Records stream back as questions finish; one that Ray retried after it had already landed is dropped by
question id, so at-least-once execution writes each question once. The fingerprint leaves the runtime out,
so a run interrupted locally can be finished on Ray and the other way round.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import numpy as np

from ragkit.build import runtime_settings
from ragkit.errors import ConfigError

if TYPE_CHECKING:
    from ragkit.evals.runner import Pending
    from ragkit.evals.scoring import EvalOptions

EVAL_BATCH = 4  # questions per actor call


class EvalWorker:
    """One actor: the KB opened once, its models loaded once; evaluate_item per question (unchanged)."""

    def __init__(self, facade: type, kb_args: tuple[Any, ...], opts: EvalOptions, cpus: float) -> None:
        import torch

        from ragkit.evals.judges import make_judge

        torch.set_num_threads(max(1, round(cpus)))
        self.kb = facade(*kb_args)  # KnowledgeBase(root, config, manifest, principal), run locally in this actor
        self.opts = opts
        self.judge = None
        if opts.generate:
            llm = self.kb.generator if opts.judge.startswith("llm") else None
            self.judge = make_judge(opts.judge, embedder=self.kb.embedder, generator=llm)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from ragkit.evals.scoring import evaluate_item

        out = np.empty(len(batch["payload"]), dtype=object)
        for n, payload in enumerate(batch["payload"]):
            index, item = pickle.loads(payload)
            out[n] = pickle.dumps(evaluate_item(self.kb, item, index, self.judge, self.opts))
        return {"payload": out}


def ask_all_ray(work: Pending) -> None:
    """runner._ask_all on a Ray cluster (`judge` and `workers` are rebuilt / sized per actor)."""
    from ragkit.distributed.cluster import connected

    kb, opts = work.kb, work.opts
    db = kb.config.database_url or ""
    if not db.startswith("postgresql"):
        raise ConfigError(
            "eval --ray needs a KB on PostgreSQL (--db postgresql+psycopg://...): its actors on other machines "
            "read it, and SQLite is a file on one machine"
        )
    settings = runtime_settings(kb.config)
    local = kb.config.model_copy(update={"runtime": kb.config.runtime.model_copy(update={"backend": "local"})})
    kb_args = (kb.root, local, dict(kb.manifest), getattr(kb, "principal", None))
    seen = {rec["id"] for rec in work.done}
    work.tick()
    if not work.todo:
        return
    with connected(settings) as ray:
        nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        actors = settings.eval_actors or nodes
        cpus = round(max(0.2, 0.9 * float(ray.cluster_resources().get("CPU", 1.0)) / actors), 2)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        items = [{"payload": pickle.dumps((i, item))} for i, item in work.todo]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * actors)))
        ds = ds.map_batches(
            EvalWorker,
            batch_size=EVAL_BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus,
            fn_constructor_kwargs={"facade": type(kb), "kb_args": kb_args, "opts": opts, "cpus": cpus},
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for payload in batch["payload"]:
                rec = pickle.loads(payload)
                if rec["id"] in seen:  # a retried question that had landed already
                    continue
                seen.add(rec["id"])
                work.record(rec)
