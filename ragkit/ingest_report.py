"""What a local run (ragkit.ingest) and a Ray run (ragkit.distributed.ingest) share about how they end: the
cancel hook and the error that carries a cancelled run's report."""

from __future__ import annotations

import threading

from ragkit.errors import Cancelled
from ragkit.types import IngestReport


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
