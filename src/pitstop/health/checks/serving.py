"""The `predict_latency` check: how long pitstop's own `/predict` takes, from the Prometheus
histograms it already records (`pitstop.observability`, `pitstop.ml.registry.serving`)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

METRICS_KEY = "metrics"  # ctx.extra: pitstop's Metrics (or its CollectorRegistry), set in pitstop.app.build
# What a caller waits for: the whole request (body, key check, prediction, the answer), by route.
# The route as pitstop.api.routers.models.PREDICT_ROUTE names it (a component does not import the API).
REQUEST_HISTOGRAM = "pitstop_http_request_seconds"
PREDICT_ROUTE = "/predict/{model}"
# One model's own prediction time, by model and version: the only one that knows the model.
MODEL_HISTOGRAM = "pitstop_model_predict_seconds"
QUANTILE = 0.95
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")  # as the API takes a model's name

Buckets = dict[float, float]  # upper bound (inf for +Inf) -> cumulative count


def bucket_counts(registry: CollectorRegistry, histogram: str, labels: Callable[[Mapping[str, str]], bool]) -> Buckets:
    """The cumulative bucket counts of a histogram's series that `labels` selects, summed per
    bound; empty without observations (or without such a histogram). Only that histogram is
    collected, not the registry's other collectors."""
    sample_name = f"{histogram}_bucket"
    counts: Buckets = {}
    for family in registry.restricted_registry([sample_name]).collect():
        for sample in family.samples:
            if sample.name == sample_name and labels(sample.labels):
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + float(sample.value)
    return counts


def histogram_quantile(q: float, counts: Buckets) -> float | None:
    """The q-quantile of cumulative bucket counts, interpolated linearly inside its bucket (as
    Prometheus' histogram_quantile does): the lowest bucket starts at 0, and a quantile in the +Inf
    bucket is the highest finite bound. None without observations."""
    bounds = sorted(counts)
    if not bounds or counts[bounds[-1]] <= 0:
        return None
    rank = q * counts[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = counts[bound]
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


class PredictLatencyCheck(Check):
    """The P95 latency of pitstop's own predictions since the previous round, estimated from the
    histogram's bucket counts (the delta since the previous round, interpolated inside the bucket
    as Prometheus' histogram_quantile does). Target `*`: every `POST /predict/{model}` request,
    the time the caller waits (body, key check, prediction, answer;
    ``pitstop_http_request_seconds``, buckets up to 2.5 s). Target a model's name: that model's
    own prediction time, every version (``pitstop_model_predict_seconds``, buckets up to 1 s),
    since requests are timed by route, not by model. The first round counts everything since the
    process started. A P95 past the highest bucket reads as that bucket's bound.

    Fewer than `min_requests` (default 1) new predictions are not judged: healthy, but not clear,
    so an open incident stays open until predictions show the latency again ("no predictions
    since the last round"); they are counted into the next round. The histograms are the
    process's own: the check judges the predictions the process running it served.

    Observed: ``p95_ms``, ``requests``. Default levels (a default: a profile sets the guide's):
    ``p95_ms`` from 100 ms a warning, from 500 ms critical."""

    default_target = "*"
    name = "predict_latency"
    issue = "predict.latency"
    default_thresholds = (Threshold("p95_ms", "above", warning=100, critical=500),)

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"min_requests"}:
            raise ValueError(f"predict_latency check: unknown parameter(s) {', '.join(sorted(unknown))}")
        if self.target != "*" and not _MODEL_NAME.fullmatch(self.target):
            raise ValueError(f"predict_latency check: target must be a model's name or '*', got {self.target[:80]!r}")
        least = params.get("min_requests", 1)
        if isinstance(least, bool) or not isinstance(least, int) or not 1 <= least <= 1_000_000:
            raise ValueError("predict_latency check: min_requests must be a whole number from 1 to 1,000,000")
        self.min_requests = least
        # The counts judged last, and the registry they came from (another registry starts over).
        self._previous: tuple[CollectorRegistry, Buckets] | None = None

    def run(self, ctx: CheckContext, /) -> CheckResult:
        metrics = ctx.extra.get(METRICS_KEY)
        registry = getattr(metrics, "registry", metrics)
        if not isinstance(registry, CollectorRegistry):
            raise RuntimeError(
                f"the predict_latency check needs pitstop's metrics in CheckContext.extra[{METRICS_KEY!r}]"
            )
        if self.target == "*":
            what = "/predict"
            counts = bucket_counts(registry, REQUEST_HISTOGRAM, lambda labels: labels.get("route") == PREDICT_ROUTE)
        else:
            what = f"model {self.target}"
            counts = bucket_counts(registry, MODEL_HISTOGRAM, lambda labels: labels.get("model") == self.target)
        since = "since the last round"
        before: Buckets = {}
        if self._previous is not None and self._previous[0] is registry:
            before = self._previous[1]
        else:
            since = "since the process started"
        new = {bound: count - before.get(bound, 0.0) for bound, count in counts.items()}
        if any(count < 0 for count in new.values()):  # the histogram started over: all of it is new
            new = dict(counts)
        requests = max(new.values(), default=0.0)
        if requests < self.min_requests:
            summary = f"{what}: no predictions {since}"
            if requests:
                summary = f"{what}: {requests:.0f} predictions {since}, under min_requests {self.min_requests}"
                summary += ": not judged yet"
            return self.result(ctx, Status.HEALTHY, summary, observed={"requests": requests}, clear=False)
        self._previous = (registry, counts)
        p95 = histogram_quantile(QUANTILE, new)
        assert p95 is not None  # there were requests
        p95_ms = round(p95 * 1000, 3)
        top = max((b for b in new if not math.isinf(b)), default=0.0)
        past = " or more (past the highest bucket)" if new.get(top, 0.0) < QUANTILE * requests else ""
        summary = f"{what}: p95 {_ms(p95_ms)} ms{past} over {requests:.0f} predictions {since}"
        return self.judge(ctx, {"p95_ms": p95_ms, "requests": requests}, summary)


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"
