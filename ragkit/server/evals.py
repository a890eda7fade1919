"""Evaluation runs over HTTP: start one (a background job holding one generation slot), list the runs the caller
may see, and serve a run's report.html.

A run reads as its starter (`kb.as_principal`), and its folder records that reader (config.json "reader"): a
caller sees the runs read as themselves (admins, and the local user of a key-less server, see all), since a
run's samples hold what its reader could read. Datasets come from the request only: a built-in name
(`halueval-qa[:N]`) or an uploaded ragkit .jsonl / SQuAD .json file, never a path on the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.responses import Response

from ragkit.errors import RagkitError, UsageError
from ragkit.server.context import Caller, ServerContext, Who, context, in_kb, reader
from ragkit.server.jobs import safe_name
from ragkit.server.redact import redact
from ragkit.server.routes import ticket
from ragkit.server.serialize import JSON, plain

router = APIRouter(prefix="/v1")
BUILTIN = re.compile(r"^halueval-qa(:\d{1,5})?$")
RUN_ID = re.compile(r"^[\w.@+\-]{1,200}$")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@dataclass
class EvalJob:
    id: str
    owner: str
    reader: str | None
    dataset: str
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    done: int = 0
    total: int = 0
    run: str | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    cancel: Any = None

    def to_json(self) -> dict[str, Any]:
        keys = ("id", "state", "dataset", "done", "total", "run", "metrics", "error", "created")
        return plain({k: getattr(self, k) for k in keys})


def _jobs(ctx: ServerContext) -> dict[str, EvalJob]:
    return ctx.eval_jobs


def _sees(who: Caller, run_reader: str | None, access_control: bool) -> bool:
    if who.admin or who.principal is None:
        return True
    return run_reader == str(who.principal) or (run_reader is None and not access_control)


def _runs(ctx: ServerContext, who: Caller) -> list[dict[str, Any]]:
    root = ctx.kb.paths.runs
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not _sees(who, cfg.get("reader"), ctx.kb.acl.enabled):
            continue
        metrics_file = d / "metrics.json"
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.exists() else None
        except (OSError, ValueError):
            metrics = None
        out.append({"id": d.name, "finished": metrics is not None, "reader": cfg.get("reader"),
                    "report": f"/v1/evals/{d.name}/report.html" if (d / "report.html").exists() else None,
                    "metrics": metrics})  # fmt: skip
    return out


@router.get("/evals", summary="Evaluation runs read as you (all for admins), and your eval jobs")
async def list_evals(request: Request, who: Who) -> JSON:
    ctx = context(request)
    runs = await in_kb(request, _runs, ctx, who)
    jobs = [j.to_json() for j in _jobs(ctx).values() if who.admin or j.owner == who.name]
    return JSON({"runs": runs, "jobs": jobs})


@router.get("/evals/{run_id}/report.html", summary="A run's report (self-contained HTML)", response_class=Response)
async def eval_report(run_id: str, request: Request, who: Who) -> Response:
    ctx = context(request)
    if not RUN_ID.match(run_id) or run_id in (".", ".."):
        raise HTTPException(404, "no such run")
    found = [r for r in await in_kb(request, _runs, ctx, who) if r["id"] == run_id and r["report"]]
    if not found:
        raise HTTPException(404, "no such run")
    page = await in_kb(request, (ctx.kb.paths.runs / run_id / "report.html").read_bytes)
    return Response(page, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/evals/jobs/{job_id}", summary="An eval job: state, progress, the run and its metrics when done")
async def eval_job(job_id: str, request: Request, who: Who) -> JSON:
    job = _jobs(context(request)).get(job_id)
    if job is None or not (who.admin or job.owner == who.name):
        raise HTTPException(404, "no such job")
    return JSON(job.to_json())


@router.post("/evals", status_code=202, summary="Start an evaluation run as you (write scope; takes a generation slot)")
async def start_eval(
    request: Request,
    who: Who,
    dataset: Annotated[str | None, Form(description="a built-in dataset: halueval-qa or halueval-qa:N")] = None,
    file: Annotated[UploadFile | None, File(description="or a ragkit .jsonl / SQuAD .json question set")] = None,
    name: Annotated[str, Form(description="the run's name")] = "api",
    limit: Annotated[int | None, Form(ge=1, le=10_000)] = None,
    retrieval_only: Annotated[bool, Form(description="score retrieval only; no generation")] = False,
) -> JSON:
    who.check_write()
    ctx = context(request)
    if (dataset is None) == (file is None):
        raise UsageError("give either dataset (halueval-qa[:N]) or a question file, not both")
    if not RUN_ID.match(name):
        raise UsageError("a run name is letters, digits and _ . @ + - (at most 200)")
    source: str | Path
    if dataset is not None:
        if not BUILTIN.match(dataset.strip()):
            raise UsageError("dataset must be halueval-qa or halueval-qa:N (upload any other question set as a file)")
        source = dataset.strip()
    else:
        assert file is not None
        filename = safe_name(file.filename or "questions.jsonl")
        if not filename.endswith((".jsonl", ".json")):
            raise UsageError("upload questions as a ragkit .jsonl or a SQuAD-style .json file")
        source = ctx.kb.root / "uploads" / safe_name(who.name) / "evals" / filename
        await in_kb(request, _store, file, source)
    t = ticket(ctx)  # 429 when the generation lane is full
    job = EvalJob(uuid.uuid4().hex, who.name, str(who.principal) if who.principal else None, str(source)
                  if isinstance(source, str) else source.name)  # fmt: skip
    job.cancel = t.cancel
    _jobs(ctx)[job.id] = job
    view = reader(ctx, who)

    def progress(done: int, total: int, _question: str) -> None:
        job.done, job.total = done, total
        if t.cancel.is_set():
            raise KeyboardInterrupt  # stop between questions; the unfinished run resumes next time

    def work() -> None:
        if t.cancel.is_set():  # cancelled while it waited for the slot
            job.state = "cancelled"
            return
        job.state = "running"
        try:
            run = view.evaluate(source, name=name, limit=limit, progress=progress, generate=not retrieval_only)
            job.run, job.metrics, job.state = run.run_dir.name, dict(run.metrics), "done"
        except KeyboardInterrupt:
            job.state = "cancelled"
        except RagkitError as exc:
            job.state, job.error = "failed", redact(str(exc), view.root)
        except Exception as exc:  # noqa: BLE001 - the job says so; the server log has the rest
            job.state, job.error = "failed", f"internal error while evaluating: {type(exc).__name__}"

    async def in_lane() -> None:
        try:
            await t.run(work)
        finally:
            t.close()

    asyncio.get_running_loop().create_task(in_lane())
    return JSON({"job": job.id, "state": job.state, "url": f"/v1/evals/jobs/{job.id}"}, status_code=202)


@router.delete("/evals/jobs/{job_id}", summary="Cancel an eval job (it stops between questions)")
async def cancel_eval(job_id: str, request: Request, who: Who) -> JSON:
    job = _jobs(context(request)).get(job_id)
    if job is None or not (who.admin or job.owner == who.name):
        raise HTTPException(404, "no such job")
    job.cancel.set()
    if job.state == "queued":
        job.state = "cancelled"
    return JSON(job.to_json())


def _store(upload: UploadFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    upload.file.seek(0)
    dest.write_bytes(upload.file.read())
