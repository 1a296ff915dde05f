"""The alert rules' judgement (when a check's signal is a problem) and the notification policy
(who is told, when): properties on random signals, a seeded flapping signal, reminders."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.alerts.policy import Event, InhibitRule, NotificationPolicy, Subject, Told
from pitstop.core.types import Severity
from pitstop.health.base import Threshold
from pitstop.incidents.policy import AlertPolicy, AlertRule, Observation, Phase
from pitstop.incidents.windows import Mutes, Silence, Window, recurring

T0 = datetime(2026, 1, 4, 0, 0, tzinfo=UTC)  # a Sunday
LEVEL = Threshold("cpu_pct", direction="above", warning=70, critical=90, clear=60)
LABELS = {"check": "cpu", "target": "host-1", "asset": "vms-server", "site": "north", "scope": "asset"}


def observe(key: str, at: datetime, value: float) -> Observation:
    status = LEVEL.status(value)
    return Observation(
        key=key,
        at=at,
        bad=status.value in ("warning", "critical"),
        clear=LEVEL.is_clear(value),
        severity=Severity.CRITICAL if status.value == "critical" else Severity.WARNING,
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
    """Judged by the rule, then told by the notification policy: nothing goes out unmuted inside a
    window, a firing problem never ends without crossing the clear level, and people hear of an
    end only after they heard of the problem."""
    window = recurring("sunday", {"asset": "vms-server"}, days="sun", start="02:00", end="04:00")
    judge, tell = AlertPolicy(rule), NotificationPolicy(lambda key: rule)
    at = T0 + timedelta(hours=start_h)
    told_problem = False
    for step_s, value in signal:
        at += timedelta(seconds=step_s)
        obs = observe("cpu.high:host-1", at, value)
        step = judge.evaluate(obs)
        if step.previous is Phase.FIRING and step.phase is not Phase.FIRING:
            assert obs.clear and value < 60
        if step.started:
            assert value >= 70 or any(judge.states[obs.key].recent)
        subject = Subject(obs.key, step.problem, step.severity, LABELS, step.summary)
        for d in tell.decide([subject], at, Mutes(windows=[window])):
            if window.active_at(at):
                assert d.suppressed_by == "window:sunday"
            elif d.event is Event.RESOLVED:
                assert told_problem and not step.problem
                told_problem = False
            else:
                told_problem = True


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


def test_a_flapping_signal_is_one_problem_that_ends_once_it_settles() -> None:
    rule = AlertRule(for_s=30, clear_for_s=120, min_interval_s=300, repeat_s=3600, flap_crossings=6)
    for seed in range(20):
        policy = AlertPolicy(rule)
        signal = flapping_signal(seed)
        values = [v for _, v in signal[:360]]
        assert sum(1 for a, b in itertools.pairwise(values) if a < 70 <= b) == 50
        steps = [(at, policy.evaluate(observe("cpu.high:host-1", at, value))) for at, value in signal]
        started = [at for at, s in steps if s.started]
        ended = [at for at, s in steps if s.ended]
        assert len(started) == 1 and len(ended) == 1, (seed, started, ended)
        assert ended[0] >= signal[360][0], seed  # not before the quiet hours


def test_for_duration_and_n_of_m() -> None:
    policy = AlertPolicy(AlertRule(for_s=120))
    at = T0
    for value, phase in [(80, Phase.PENDING), (80, Phase.PENDING), (80, Phase.FIRING), (65, Phase.FIRING)]:
        step = policy.evaluate(observe("cpu.high:h", at, value))
        assert step.phase is phase
        at += timedelta(seconds=60)
    assert policy.evaluate(observe("cpu.high:h", at, 50)).ended
    nm = AlertPolicy(AlertRule(n=2, m=3))
    phases = [
        nm.evaluate(observe("cpu.high:h", T0 + timedelta(minutes=i), v)).phase for i, v in enumerate([80, 50, 80])
    ]
    assert phases == [Phase.PENDING, Phase.PENDING, Phase.FIRING]


def incident(severity: Severity = Severity.WARNING, *, open: bool = True, quiet: bool = False) -> Subject:
    return Subject("cpu.high:h", open, severity, LABELS, "cpu high", quiet=quiet)


def test_reminders_back_off_a_rise_goes_out_at_once_and_a_silence_holds_back_once() -> None:
    rule = AlertRule(min_interval_s=300, repeat_s=3600, repeat_max_s=4 * 3600)
    policy = NotificationPolicy(lambda key: rule)
    silence = Silence({"check": "cpu"}, "ana", "load test", T0, T0 + timedelta(minutes=30))
    events = []
    for minute in range(0, 16 * 60, 5):
        at = T0 + timedelta(minutes=minute)
        subject = incident(Severity.CRITICAL if minute >= 60 else Severity.WARNING, open=minute < 15 * 60)
        for d in policy.decide([subject], at, Mutes([silence])):
            events.append((minute, d.event, d.severity, d.suppressed_by))
    assert events == [
        (0, Event.FIRING, Severity.WARNING, "silence:None"),  # logged once, not every round
        (30, Event.FIRING, Severity.WARNING, None),  # sent when the silence ends
        (60, Event.FIRING, Severity.CRITICAL, None),  # a rise: at once
        (120, Event.REPEAT, Severity.CRITICAL, None),  # then after repeat_s,
        (210, Event.REPEAT, Severity.CRITICAL, None),  # as long as it had been told (90 min),
        (390, Event.REPEAT, Severity.CRITICAL, None),  # and so on,
        (630, Event.REPEAT, Severity.CRITICAL, None),  # up to repeat_max_s
        (870, Event.REPEAT, Severity.CRITICAL, None),
        (900, Event.RESOLVED, Severity.CRITICAL, None),
    ]


def test_no_reminders_for_an_acknowledged_incident_and_no_refiring_within_the_min_interval() -> None:
    policy = NotificationPolicy(lambda key: AlertRule(min_interval_s=300, repeat_s=600))
    assert [d.event for d in policy.decide([incident()], T0)] == [Event.FIRING]
    assert policy.decide([incident(quiet=True)], T0 + timedelta(hours=5)) == []
    assert [d.event for d in policy.decide([incident(open=False)], T0 + timedelta(hours=5))] == [Event.RESOLVED]
    assert policy.decide([incident()], T0 + timedelta(hours=5, minutes=1)) == []  # reopened at once: waits
    later = T0 + timedelta(hours=5, minutes=5)
    assert [d.event for d in policy.decide([incident()], later)] == [Event.FIRING]


def test_an_open_site_incident_inhibits_its_assets_and_what_was_told_is_rebuilt_from_the_records() -> None:
    policy = NotificationPolicy(
        lambda key: AlertRule(min_interval_s=0), inhibit=[InhibitRule({"scope": "site"}, {"scope": "asset"}, ("site",))]
    )
    site = {"check": "tcp", "target": "gw", "site": "north", "scope": "site"}
    south = {**LABELS, "site": "south"}
    subjects = [
        Subject("site.down:north", True, Severity.CRITICAL, site, "gw down"),
        Subject("cpu.high:h", True, Severity.CRITICAL, LABELS, "cpu"),
        Subject("cpu.high:s", True, Severity.CRITICAL, south, "cpu"),
    ]
    decisions = policy.decide(subjects, T0, open_labels=[(s.key, s.labels) for s in subjects])
    assert [d.suppressed_by for d in decisions] == [None, "inhibited:site.down:north", None]
    records = [(d.key, d.event.value, d.at, d.severity.value, d.suppressed_by is not None) for d in decisions]
    restored = NotificationPolicy(lambda key: AlertRule(min_interval_s=0))
    restored.told = Told.replay(records)
    assert restored.decide([subjects[2]], T0 + timedelta(minutes=1)) == []  # told already
    assert [d.event for d in restored.decide([subjects[1]], T0 + timedelta(minutes=1))] == [Event.FIRING]


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
