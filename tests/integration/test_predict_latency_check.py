"""The `predict_latency` check: the P95 of pitstop's own predictions from the Prometheus
histograms, on a real app serving a trained model and on the real histogram objects observed
with known values (the estimate, the delta between rounds, a restarted histogram)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from pitstop.api import create_app
from pitstop.app import build
from pitstop.config import Settings
from pitstop.core.types import Role, Status
from pitstop.health.base import CheckContext, CheckResult
from pitstop.health.checks.serving import PREDICT_ROUTE, PredictLatencyCheck, histogram_quantile
from pitstop.observability import Metrics
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from tests.conftest import auth
from tests.integration.test_models_lifecycle import coil_frame

NAME = "hvac-twin"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(auto_describe=True))


@pytest.fixture
def ctx(tmp_path: Path, metrics: Metrics) -> CheckContext:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    return CheckContext(clock=FrozenClock(), db=db, extra={"metrics": metrics})


def observe(metrics: Metrics, seconds: float, n: int, route: str = PREDICT_ROUTE) -> None:
    for _ in range(n):
        metrics.http_latency.labels(route).observe(seconds)


def test_the_p95_is_estimated_inside_its_bucket_from_the_new_counts_only(metrics: Metrics, ctx: CheckContext) -> None:
    check = PredictLatencyCheck("*")
    observe(metrics, 0.007, 100)  # all in the (5 ms, 10 ms] bucket
    observe(metrics, 2.0, 50, route="/api/health/report")  # another route: not a prediction
    first = check.run(ctx)
    assert 5.0 < first.observed["p95_ms"] <= 10.0
    assert first.observed["p95_ms"] == pytest.approx(5 + 5 * 0.95)  # linear inside the bucket
    assert first.observed["requests"] == 100 and first.status is Status.HEALTHY
    assert first.summary == "/predict: p95 9.75 ms over 100 predictions since the process started"
    assert first.issue_key == "predict.latency" and first.incident_key == "predict.latency:*"

    observe(metrics, 0.3, 20)  # (250 ms, 500 ms]: the new round sees only these 20
    second = check.run(ctx)
    assert second.observed["requests"] == 20
    assert 250.0 < second.observed["p95_ms"] <= 500.0
    assert second.observed["p95_ms"] == pytest.approx(250 + 250 * 19 / 20)
    assert second.status is Status.WARNING  # the default levels: 100 ms a warning, 500 ms critical
    assert second.summary.startswith("/predict: p95 488 ms over 20 predictions since the last round (p95_ms")

    third = check.run(ctx)  # nothing new: healthy, but not clear (an open incident stays open)
    assert (third.status, third.clear) == (Status.HEALTHY, False)
    assert third.summary == "/predict: no predictions since the last round"
    assert third.observed == {"requests": 0.0} and "p95_ms" not in third.observed

    observe(metrics, 0.002, 96)
    observe(metrics, 0.7, 4)
    fourth = check.run(ctx)  # 96 % are within 2.5 ms: the P95 is too
    assert fourth.observed["requests"] == 100 and 1.0 < fourth.observed["p95_ms"] <= 2.5
    assert fourth.status is Status.HEALTHY and fourth.clear is True


def test_a_p95_past_the_highest_bucket_reads_as_its_bound(metrics: Metrics, ctx: CheckContext) -> None:
    check = PredictLatencyCheck("*")
    observe(metrics, 0.05, 90)
    observe(metrics, 7.0, 10)  # past 2.5 s, the highest bucket of the request histogram
    result = check.run(ctx)
    assert result.observed["p95_ms"] == 2500.0 and result.status is Status.CRITICAL
    assert "p95 2500 ms or more (past the highest bucket)" in result.summary


def test_too_few_predictions_are_not_judged_but_counted_into_the_next_round(
    metrics: Metrics, ctx: CheckContext
) -> None:
    check = PredictLatencyCheck("*", params={"min_requests": 50})
    observe(metrics, 0.3, 30)
    early = check.run(ctx)
    assert (early.status, early.clear) == (Status.HEALTHY, False) and early.observed == {"requests": 30.0}
    assert early.summary == "/predict: 30 predictions since the process started, under min_requests 50: not judged yet"
    observe(metrics, 0.3, 30)
    judged = check.run(ctx)
    assert judged.observed["requests"] == 60 and judged.status is Status.WARNING


def test_a_histogram_that_started_over_is_counted_from_zero(metrics: Metrics, ctx: CheckContext) -> None:
    check = PredictLatencyCheck("*")
    observe(metrics, 0.007, 100)
    check.run(ctx)
    restarted = Metrics(CollectorRegistry())  # pitstop restarted: a new registry, counted from zero
    observe(restarted, 0.02, 10)
    ctx.extra["metrics"] = restarted.registry  # a bare CollectorRegistry does too
    after = check.run(ctx)
    assert after.observed["requests"] == 10 and 10.0 < after.observed["p95_ms"] <= 25.0
    assert "since the process started" in after.summary


def test_a_model_target_without_model_serving_and_without_metrics(ctx: CheckContext) -> None:
    result = PredictLatencyCheck(NAME).run(ctx)
    assert (result.status, result.clear) == (Status.HEALTHY, False)
    assert result.summary == "model hvac-twin: no predictions since the process started"
    ctx.extra.pop("metrics")
    with pytest.raises(RuntimeError, match=r"needs pitstop's metrics in CheckContext.extra\['metrics'\]"):
        PredictLatencyCheck("*").run(ctx)


def test_the_quantile_follows_prometheus_histogram_quantile() -> None:
    assert histogram_quantile(0.95, {}) is None
    assert histogram_quantile(0.95, {0.1: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.5, {0.1: 0.0, 0.25: 10.0, math.inf: 10.0}) == pytest.approx(0.175)
    assert histogram_quantile(0.5, {0.1: 10.0, math.inf: 10.0}) == pytest.approx(0.05)  # the first bucket starts at 0
    assert histogram_quantile(0.95, {0.1: 5.0, 0.5: 5.0, 1.0: 10.0, math.inf: 10.0}) == pytest.approx(0.95)
    assert histogram_quantile(0.99, {0.1: 50.0, 0.5: 50.0, math.inf: 100.0}) == 0.5


def test_a_real_app_serving_a_model(tmp_path: Path) -> None:
    """Predictions through the API (the fast path and the framework's), judged by the check
    through the health monitor's context, as `pitstop serve` would."""
    pitstop = build(Settings(data_dir=tmp_path), clock=FrozenClock())
    pitstop.db.upgrade()
    frame = coil_frame("2026-03-01", 6)
    pitstop.models.retrain(NAME, frame, params={"n_estimators": 10})
    token = pitstop.keys.create("viewer", Role.VIEWER, pitstop.clock.now())[1]
    rows = frame.iloc[:3, :6].to_numpy().tolist()
    ctx = pitstop.health.context
    both = PredictLatencyCheck("*"), PredictLatencyCheck(NAME)
    assert [c.run(ctx).summary for c in both] == [
        "/predict: no predictions since the process started",
        f"model {NAME}: no predictions since the process started",
    ]
    with TestClient(create_app(pitstop)) as client:
        for _ in range(40):
            response = client.post(f"/predict/{NAME}", json={"rows": rows}, headers=auth(token))
            assert response.status_code == 200, response.text
        client.get("/api/health/report", headers=auth(token))
    results: list[CheckResult] = [c.run(ctx) for c in both]
    for result in results:
        assert result.observed["requests"] == 40, result.summary
        assert 0 < result.observed["p95_ms"] <= 2500
    assert results[1].observed["p95_ms"] <= 100  # the model's own buckets end at 100 ms
    assert results[0].summary.startswith("/predict: p95 ")
    assert results[1].summary.startswith(f"model {NAME}: p95 ")
    assert [c.run(ctx).observed["requests"] for c in both] == [0, 0]
    pitstop.close()


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("*", {"min_requests": 0}),
        ("*", {"min_requests": -1}),
        ("*", {"min_requests": True}),
        ("*", {"min_requests": "5"}),
        ("*", {"min_requests": 1.5}),
        ("*", {"min_requests": 10**7}),
        ("*", {"quantile": 0.99}),
        ("*", {"route": "/api/x"}),
        ("", {}),
        ("a/b", {}),
        ("../etc/passwd", {}),
        ("x" * 201, {}),
        ("hvac twin", {}),
        ("hvac-twin\n", {}),
    ],
)
def test_malformed_targets_and_parameters_are_refused(target: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="predict_latency check: "):
        PredictLatencyCheck(target, params=params)
