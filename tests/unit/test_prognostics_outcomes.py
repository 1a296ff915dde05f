"""What became of a prediction: failures, repairs before failure and false alarms, judged against the interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pitstop.prognostics import Estimate, Outcome

AT = datetime(2026, 5, 1, tzinfo=UTC)


def _estimate(median: float, lower: float, upper: float) -> Estimate:
    return Estimate(1, "pump-1", "degradation", AT, median, lower, upper, 0.8, 3.2, 1, "{}")


@pytest.mark.parametrize(
    ("hours", "covered", "error"),
    [(100.0, True, 0.0), (60.0, True, 40.0), (40.0, False, 60.0), (200.0, False, -100.0)],
)
def test_a_failure_is_judged_against_the_interval(hours: float, covered: bool, error: float) -> None:
    outcome = Outcome.judge(_estimate(100, 50, 150), 7, "failed", AT + timedelta(hours=hours))
    assert outcome.finding == "failed" and outcome.observed_h == pytest.approx(hours)
    assert outcome.covered == int(covered)
    assert outcome.error_h == pytest.approx(error)  # positive: the failure came sooner than the median said


def test_a_repair_before_failure_proves_a_miss_only_past_the_upper_bound() -> None:
    early = Outcome.judge(_estimate(100, 50, 150), 7, "bearing_wear", AT + timedelta(hours=80))
    assert early.finding == "confirmed" and early.covered is None and early.observed_h is None
    late = Outcome.judge(_estimate(100, 50, 150), 7, "bearing_wear", AT + timedelta(hours=170))
    assert late.covered == 0  # it ran longer than the upper bound: the interval was too short


def test_false_alarms_and_unknowns_are_not_judged() -> None:
    for code, finding in (("no_fault", "false_alarm"), (None, "unknown")):
        outcome = Outcome.judge(_estimate(100, 50, 150), 7, code, AT + timedelta(hours=10))
        assert outcome.finding == finding and outcome.covered is None and outcome.error_h is None
