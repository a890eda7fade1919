"""What a local run (ragkit.ingest) and a Ray run (ragkit.distributed.ingest) share: the tally of what settled,
which feeds the progress callback and becomes the IngestReport, and the cancel hook with its error."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragkit.errors import Cancelled, why_undocumented
from ragkit.types import FileFailure, IngestReport

if TYPE_CHECKING:
    from ragkit.ingest_plan import Plan

ProgressFn = Callable[[int, int, str], None]  # (files done, files total, current file)


class IngestCancelled(Cancelled):
    """An ingest stopped by its `cancel` event. What was committed stays (`report` counts it, interrupted=True);
    the rest was dropped, to be ingested by the next run."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__(
            f"ingest cancelled after {report.ingested} new or changed files were committed (they stay); "
            "run it again to ingest the rest"
        )
        self.report = report


def stop_if_cancelled(cancel: threading.Event | None) -> None:
    """Raise Cancelled once `cancel` is set (an ingest checks between files and between embedding batches)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("ingest cancelled")


@dataclass
class Tally:
    """A run's counts as its files settle (written, kept unchanged, or failed). Make it with `start`."""

    plan: Plan
    progress: ProgressFn | None
    started: float  # time.perf_counter() when the run began
    done: int
    unchanged: int
    failed: list[FileFailure]
    ingested: int = 0
    chunks_added: int = 0
    notes: list[FileFailure] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)  # uris whose failure this run stored (they take its grants)
    # files that hold no documentation (errors.NoDocumentation): one note for all, not failures
    left_out: list[FileFailure] = field(default_factory=list)

    @classmethod
    def start(cls, plan: Plan, progress: ProgressFn | None, started: float) -> Tally:
        """The tally of a planned run (what planning settled counts as done), reported to `progress` at once."""
        failed = [f for f in plan.failed if why_undocumented(f.reason) is None]
        tally = cls(plan, progress, started, plan.done, plan.unchanged, failed)
        # an undocumented file untouched since an earlier run is left out again, not failed
        tally.left_out = [f for f in plan.failed if why_undocumented(f.reason) is not None]
        tally.notes.extend(plan.notes)
        tally.tick()
        return tally

    def tick(self, name: str = "") -> None:
        """Tell the progress callback (files done, files total, current file)."""
        if self.progress:
            self.progress(self.done, self.plan.total, name)

    def written(self, uri: str, name: str, chunks: int, notes: Sequence[str], reread: bool = False) -> None:
        """A new or changed document committed with `chunks` chunks (notes: its remarks, e.g. an encoding guessed;
        reread: same bytes, parsed again because an older parser had read them)."""
        self.ingested += 1
        self.plan.reread += reread
        self.chunks_added += chunks
        self.notes.extend(FileFailure(uri, note) for note in notes)
        self._settled(name)

    def kept(self, uri: str, name: str) -> None:
        """A file whose content is stored already (finish_ingest stamps this run's meta and grants on it)."""
        self.plan.kept.append(uri)
        self.unchanged += 1
        self._settled(name)

    def failure(self, uri: str, name: str, reason: str) -> None:
        """A file that could not be read or parsed (its failure is stored as a document); one that holds no
        documentation (a Perl module without POD) is left out with a note instead."""
        (self.failed if why_undocumented(reason) is None else self.left_out).append(FileFailure(uri, reason))
        self.recorded.append(uri)
        self._settled(name)

    def _settled(self, name: str) -> None:
        self.done += 1
        self.tick(name)

    def end(self, stopped: BaseException | None, restamped: int = 0, deleted: int = 0) -> IngestReport:
        """The run's IngestReport. stopped: the KeyboardInterrupt or Cancelled that ended it early (the report
        says interrupted); a Cancelled is raised again as IngestCancelled, carrying the report."""
        report = IngestReport(
            files_seen=self.plan.files_seen,
            ingested=self.ingested,
            unchanged=self.unchanged,
            failed=tuple(self.failed),
            chunks_added=self.chunks_added,
            seconds=time.perf_counter() - self.started,
            interrupted=stopped is not None,
            deleted=deleted,
            restamped=restamped,
            reread=self.plan.reread,
            notes=tuple(self.notes) + _left_out_note(self.left_out),
        )
        if isinstance(stopped, Cancelled):
            raise IngestCancelled(report)
        return report


def _left_out_note(left_out: Sequence[FileFailure]) -> tuple[FileFailure, ...]:
    """One note for the files that hold no documentation: "left out 8 files that hold no documentation (Perl code
    without POD)", on the folder they share."""
    if not left_out:
        return ()
    uris = [f.uri for f in left_out]
    where = os.path.commonpath(uris) if all(u.startswith("/") for u in uris) else uris[0]
    why = sorted({why_undocumented(f.reason) or "" for f in left_out} - {""})
    n = len(left_out)
    text = f"left out {n} file{'s' if n != 1 else ''} that hold{'s' if n == 1 else ''} no documentation"
    return (FileFailure(where, text + (f" ({'; '.join(why)})" if why else "")),)
