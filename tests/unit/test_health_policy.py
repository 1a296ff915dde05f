"""The alert policy state machine: properties on random signals, and a seeded flapping signal."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.core.types import Severity
from pitstop.health.base import Threshold
from pitstop.incidents.policy import AlertPolicy, AlertRule, Event, InhibitRule, Observation, Phase
from pitstop.incidents.windows import Mutes, Silence, Window, recurring

T0 = datetime(2026, 1, 4, 0, 0, tzinfo=UTC)  # a Sunday
LEVEL = Threshold("cpu_pct", direction="above", warning=70, critical=90, clear=60)
LABELS = {"check": "cpu", "target": "host-1", "asset": "vms-server", "site": "north", "scope": "asset"}


def observe(key: str, at: datetime, value: float, labels: dict[str, str] = LABELS) -> Observation:
    status = LEVEL.status(value)
    return Observation(
        key=key,
        at=at,
        bad=status.value in ("warning", "critical"),
        clear=LEVEL.is_clear(value),
        severity=Severity.CRITICAL if status.value == "critical" else Severity.WARNING,
        labels=labels,
        summary=f"cpu {value:.0f}%",
    )


rules = st.builds(
    AlertRule,
    for_s=st.sampled_from([0.0, 60.0, 300.0]),
    n=st.just(1),
    m=st.integers(1, 3),
    clear_for_s=st.sampled_from([0.0, 120.0]),
    min_interval_s=st.sampled_from([0.0, 300.0]),
    repeat_s=st.sampled_from([600.0, 3600.0]),
    flap_crossings=st.integers(2, 8),
)
signals = st.lists(st.tuples(st.integers(10, 900), st.floats(0, 100)), min_size=1, max_size=150)


@settings(max_examples=300, deadline=None)
@given(rules, signals, st.integers(0, 7 * 24))
def test_properties_on_random_signals(rule: AlertRule, signal: list[tuple[int, float]], start_h: int) -> None:
    window = recurring("sunday", {"asset": "vms-server"}, days="sun", start="02:00", end="04:00")
    policy = AlertPolicy(rule)
    at = T0 + timedelta(hours=start_h)
    was_clear_since_firing = False
    for step_s, value in signal:
        at += timedelta(seconds=step_s)
        obs = observe("cpu.high:host-1", at, value)
        before = policy.states.get(obs.key)
        firing_before = before is not None and before.phase is Phase.FIRING
        step = policy.evaluate(obs, Mutes(windows=[window]))
        decision = step.decision
        # never an alert inside a window: anything decided there is held back and logged
        if decision is not None and window.active_at(at):
            assert decision.suppressed_by == "window:sunday"
        # never a clear without crossing the clear threshold
        if firing_before and step.phase is not Phase.FIRING:
            assert obs.clear and value < 60
        if decision is not None and decision.event is Event.RESOLVED:
            assert value < 60
        if step.fired:
            assert value >= 70 or any(policy.states[obs.key].recent)
        was_clear_since_firing = was_clear_since_firing or obs.clear
    assert was_clear_since_firing in (True, False)


def flapping_signal(seed: int, crossings: int = 50) -> list[tuple[datetime, float]]:
    """Every 10 s for 3 h: an hour that rises past 70% exactly `crossings` times, then 2 quiet hours."""
    rng = random.Random(seed)
    high_steps: set[int] = set()
    for i in range(crossings):
        rise = 7 * i + 1 + rng.randint(0, 1)
        high_steps.update(range(rise, rise + rng.randint(1, 4)))
    out = []
    for i in range(3 * 360):
        value = rng.uniform(72, 80) if i in high_steps else rng.uniform(40, 68)
        if i >= 360:
            value = rng.uniform(30, 50)
        out.append((T0 + timedelta(hours=10, seconds=10 * i), value))
    return out


def test_a_flapping_signal_notifies_at_most_once_per_repeat_interval() -> None:
    rule = AlertRule(for_s=30, clear_for_s=120, min_interval_s=300, repeat_s=3600, flap_crossings=6)
    for seed in range(20):
        policy = AlertPolicy(rule)
        sent = []
        signal = flapping_signal(seed)
        values = [v for _, v in signal[:360]]
        assert sum(1 for a, b in itertools.pairwise(values) if a < 70 <= b) == 50
        for at, value in signal:
            decision = policy.evaluate(observe("cpu.high:host-1", at, value)).decision
            if decision is not None and decision.suppressed_by is None:
                sent.append(decision)
        problems = [d for d in sent if d.event is not Event.RESOLVED]
        assert problems, seed
        assert any(d.flapping for d in sent), seed
        for a, b in itertools.pairwise(sent):
            assert (b.at - a.at) >= timedelta(seconds=rule.repeat_s), (seed, sent)
        assert sum(d.event is Event.RESOLVED for d in sent) <= 1
        assert sent[-1].event is Event.RESOLVED, seed  # it settled, and people are told once


def test_for_duration_and_n_of_m() -> None:
    policy = AlertPolicy(AlertRule(for_s=120, min_interval_s=0))
    at = T0
    for value, phase in [(80, Phase.PENDING), (80, Phase.PENDING), (80, Phase.FIRING), (65, Phase.FIRING)]:
        step = policy.evaluate(observe("cpu.high:h", at, value))
        assert step.phase is phase
        at += timedelta(seconds=60)
    assert policy.evaluate(observe("cpu.high:h", at, 50)).decision.event is Event.RESOLVED  # type: ignore[union-attr]
    nm = AlertPolicy(AlertRule(n=2, m=3, min_interval_s=0))
    phases = [
        nm.evaluate(observe("cpu.high:h", T0 + timedelta(minutes=i), v)).phase for i, v in enumerate([80, 50, 80])
    ]
    assert phases == [Phase.PENDING, Phase.PENDING, Phase.FIRING]


def test_repeat_escalation_and_silence() -> None:
    policy = AlertPolicy(AlertRule(min_interval_s=300, repeat_s=3600))
    silence = Silence({"check": "cpu"}, "ana", "load test", T0, T0 + timedelta(minutes=30))
    events = []
    for minute in range(0, 130, 5):
        at = T0 + timedelta(minutes=minute)
        decision = policy.evaluate(observe("cpu.high:h", at, 95 if minute > 60 else 75), Mutes([silence])).decision
        if decision:
            events.append((minute, decision.event, decision.severity, decision.suppressed_by))
    assert events == [
        (0, Event.FIRING, Severity.WARNING, "silence:None"),
        (30, Event.FIRING, Severity.WARNING, None),
        (65, Event.FIRING, Severity.CRITICAL, None),
        (125, Event.REPEAT, Severity.CRITICAL, None),
    ]


def test_site_down_inhibits_its_assets_and_state_survives_a_restart() -> None:
    policy = AlertPolicy(
        AlertRule(min_interval_s=0), inhibit=[InhibitRule({"scope": "site"}, {"scope": "asset"}, ("site",))]
    )
    site = {"check": "tcp", "target": "gw", "site": "north", "scope": "site"}
    other = {**LABELS, "site": "south"}
    steps = policy.evaluate_round(
        [observe("site.down:north", T0, 99, site), observe("cpu.high:h", T0, 99), observe("cpu.high:s", T0, 99, other)]
    )
    assert [s.decision.suppressed_by for s in steps if s.decision] == [None, "inhibited:site.down:north", None]
    restored = AlertPolicy(AlertRule(min_interval_s=0))
    restored.load(policy.dump())
    assert restored.states["cpu.high:s"].phase is Phase.FIRING
    assert restored.evaluate(observe("cpu.high:s", T0 + timedelta(minutes=1), 99)).decision is None


def test_window_occurrences_respect_the_time_zone() -> None:
    window = recurring("sun", {"asset": "*"}, days="sun", start="02:00", end="04:00", timezone="Europe/Berlin")
    slots = list(window.occurrences(T0, T0 + timedelta(days=14)))
    assert [(a.isoformat(), b.isoformat()) for a, b in slots] == [
        ("2026-01-04T01:00:00+00:00", "2026-01-04T03:00:00+00:00"),
        ("2026-01-11T01:00:00+00:00", "2026-01-11T03:00:00+00:00"),
    ]
    night = recurring("night", {"asset": "*"}, days="daily", start="22:00", end="02:00")
    assert night.active_at(T0 + timedelta(hours=1)) and not night.active_at(T0 + timedelta(hours=3))
    once = Window("x", {"a": "b"}, "once", timedelta(0), starts_at=T0, ends_at=T0 + timedelta(hours=1))
    assert once.active_at(T0) and not once.active_at(T0 + timedelta(hours=1))
