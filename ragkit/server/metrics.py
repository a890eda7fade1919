"""Prometheus metrics of one server (its own registry, so several apps in one process do not collide)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Requests and latency per route; seconds per answer stage; the generation lane; tokens; abstentions."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float], active: Callable[[], float]) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("ragkit_http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "ragkit_http_request_seconds",
            "Seconds to the response headers",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "ragkit_stage_seconds",
            "Seconds per answer stage (retrieve, generate, check, total)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("ragkit_generated_tokens", "Completion tokens generated", registry=r)
        self.tokens_per_s = Histogram(
            "ragkit_generation_tokens_per_second",
            "Decode speed per answer",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200),
            registry=r,
        )
        self.answers = Counter("ragkit_answers", "Answers given", ["abstained"], registry=r)
        self.refused = Counter("ragkit_refused_requests", "Requests refused", ["reason"], registry=r)
        self.cancelled = Counter("ragkit_cancelled_generations", "Generations stopped: client went away", registry=r)
        self.streams = Gauge("ragkit_open_streams", "Server-sent event streams open", registry=r)
        queue = Gauge("ragkit_generation_queue_depth", "Generations waiting for a slot", registry=r)
        queue.set_function(queue_depth)
        running = Gauge("ragkit_generations_running", "Generations running", registry=r)
        running.set_function(active)
        self.jobs = Counter("ragkit_ingest_jobs", "Ingest jobs by final state", ["state"], registry=r)

    def answered(self, answer: object) -> None:
        timings = getattr(answer, "timings", {}) or {}
        for stage, seconds in timings.items():
            if isinstance(seconds, (int, float)):
                self.stage.labels(stage).observe(float(seconds))
        tokens = int(getattr(answer, "completion_tokens", 0) or 0)
        self.tokens.inc(tokens)
        generate_s = float(timings.get("generate", 0.0) or 0.0)
        if tokens and generate_s > 0:
            self.tokens_per_s.observe(tokens / generate_s)
        self.answers.labels(str(bool(getattr(answer, "abstained", False))).lower()).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
