"""Uploads ingested as background jobs: POST /v1/documents -> 202 + a job id; GET / DELETE /v1/jobs/{id}.

Uploaded files are kept under KB/uploads/<user>/ (their path is the document's uri, so a re-upload of the same
name replaces it) and ingested one job at a time by a single worker thread, beside searches (the store's
readers-writer lock protects FAISS). A write-scope caller's upload is granted to `user:NAME` plus the grants
the request names. A job is visible to its creator and to admins only; to anyone else it does not exist (404).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.responses import StreamingResponse

from ragkit.access import grant_tokens
from ragkit.errors import RagkitError, UsageError
from ragkit.fsutil import storage_errors, storage_problem
from ragkit.ingest_report import IngestCancelled
from ragkit.server.context import Caller, Who, context, in_kb
from ragkit.server.redact import redact
from ragkit.server.serialize import HEARTBEAT, JSON, SSE_HEADERS, plain, sse
from ragkit.types import FileFailure, IngestReport

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase
    from ragkit.server.metrics import Metrics

log = logging.getLogger("ragkit.server")
router = APIRouter(prefix="/v1")
FINAL = ("done", "failed", "cancelled")
_UNSAFE = re.compile(r"[^\w.@+\-]+")


def safe_name(name: str) -> str:
    """A file name from a client, as a plain name: no folders, no leading dots (ingest skips hidden files)."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip("._")
    if not base:
        raise UsageError(f"cannot store an upload named {name!r}; give the file a name such as notes.md")
    return base[:200]


@dataclass
class Job:
    id: str
    owner: str
    files: list[str]
    allow: tuple[str, ...]
    meta: dict[str, str]
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    done: int = 0
    total: int = 0
    current: str = ""
    report: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "files": [Path(f).name for f in self.files],
            "progress": {"done": self.done, "total": self.total, "current": Path(self.current).name},
            "report": plain(self.report),
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class Jobs:
    """Ingest jobs of one server, run one at a time in a thread of their own."""

    def __init__(self, kb: KnowledgeBase, metrics: Metrics) -> None:
        self.kb = kb
        self.metrics = metrics
        self.uploads = kb.paths.uploads
        self._jobs: dict[str, Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragkit-ingest")

    def submit(self, owner: str, files: list[str], allow: tuple[str, ...], meta: dict[str, str]) -> Job:
        job = Job(uuid.uuid4().hex, owner, files, allow, meta, total=len(files))
        self._jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job

    def find(self, job_id: str, who: Caller) -> Job:
        job = self._jobs.get(job_id)
        if job is None or not (who.admin or job.owner == who.name):
            raise HTTPException(404, "no such job")
        return job

    def mine(self, who: Caller) -> list[Job]:
        return [j for j in self._jobs.values() if who.admin or j.owner == who.name]

    def _run(self, job: Job) -> None:
        if job.cancel.is_set():
            job.state, job.finished = "cancelled", time.time()
            self.metrics.jobs.labels(job.state).inc()
            return
        job.state, job.started = "running", time.time()

        def progress(done: int, total: int, name: str) -> None:
            job.done, job.total, job.current = done, total, name

        try:
            report = self.kb.ingest(
                job.files, progress=progress, allow=job.allow, meta=job.meta or None, cancel=job.cancel
            )
            job.report = self.public(report)
            job.state = "failed" if report.failed else "done"
            if report.failed:
                job.error = "; ".join(f"{f.uri}: {f.reason}" for f in job.report.failed)[:2000]
        except IngestCancelled as exc:  # what was committed stays; the report says how much
            job.state, job.report = "cancelled", self.public(exc.report)
        except RagkitError as exc:
            job.state, job.error = "failed", redact(str(exc), self.kb.root)
        except Exception as exc:  # noqa: BLE001 - a bug: the job says so, the log has the traceback
            log.exception("ingest job %s failed", job.id)
            why = storage_problem(exc) or "internal error while ingesting; see the server log"
            job.state, job.error = "failed", why
        job.finished = time.time()
        self.metrics.jobs.labels(job.state).inc()

    def public(self, report: IngestReport) -> IngestReport:
        """The report as its client sees it: files by name, reasons without the server's paths."""

        def shown(items: tuple[FileFailure, ...]) -> tuple[FileFailure, ...]:
            return tuple(FileFailure(Path(f.uri).name, redact(f.reason, self.kb.root)) for f in items)

        return replace(report, failed=shown(report.failed), notes=shown(report.notes))

    def close(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)  # a running job stops after its current files


def _save(upload: UploadFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        with storage_errors(), tmp.open("wb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                out.write(chunk)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


@router.post("/documents", status_code=202, summary="Upload files and ingest them in the background (write scope)")
async def upload(
    request: Request,
    who: Who,
    files: Annotated[list[UploadFile], File(description="the documents (any format ragkit ingests)")],
    allow: Annotated[
        tuple[str, ...] | list[str], Form(description="more grants: group:NAME, user:NAME or public")
    ] = (),
    meta: Annotated[list[str] | None, Form(description="KEY=VALUE metadata stamped on the documents")] = None,
) -> JSON:
    who.check_write()
    ctx = context(request)
    grants = grant_tokens([*(allow or []), *([f"user:{who.principal.name}"] if who.principal else [])])
    pairs = {}
    for item in meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"meta {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value
    folder = ctx.jobs.uploads / safe_name(who.name)
    paths = [folder / safe_name(f.filename or "") for f in files]
    for f, dest in zip(files, paths, strict=True):
        await in_kb(request, _save, f, dest)
    job = ctx.jobs.submit(who.name, [str(p) for p in paths], grants, pairs)
    return JSON({"job": job.id, "state": job.state, "url": f"/v1/jobs/{job.id}"}, status_code=202)


@router.get("/jobs", summary="Your ingest jobs")
async def list_jobs(request: Request, who: Who) -> JSON:
    return JSON({"jobs": [j.to_json() for j in context(request).jobs.mine(who)]})


@router.get("/jobs/{job_id}", summary="An ingest job: state, progress, and its IngestReport when finished")
async def get_job(job_id: str, request: Request, who: Who) -> JSON:
    return JSON(context(request).jobs.find(job_id, who).to_json())


@router.get(
    "/jobs/{job_id}/events",
    summary="An ingest job's progress as server-sent events: progress (on each change), then end (its final state)",
    response_class=StreamingResponse,
)
async def job_events(job_id: str, request: Request, who: Who) -> StreamingResponse:
    ctx = context(request)
    job = ctx.jobs.find(job_id, who)

    async def stream() -> AsyncIterator[str]:
        last, quiet = None, 0.0
        while True:
            now = job.to_json()
            if now != last:
                last, quiet = now, 0.0
                if job.state in FINAL:
                    yield sse("end", now)
                    return
                yield sse("progress", now)
            elif quiet >= ctx.settings.heartbeat_s:
                quiet = 0.0
                yield HEARTBEAT
            await asyncio.sleep(0.2)
            quiet += 0.2

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.delete("/jobs/{job_id}", summary="Cancel an ingest job (it stops after the files being embedded)")
async def cancel_job(job_id: str, request: Request, who: Who) -> JSON:
    job = context(request).jobs.find(job_id, who)
    job.cancel.set()
    return JSON(job.to_json())
