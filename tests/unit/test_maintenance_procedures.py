"""Procedure files, the cron parser and the pure planner."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.errors import InvalidInput
from pitstop.maintenance.cron import Cron
from pitstop.maintenance.planning import Job, Slot, plan
from pitstop.maintenance.procedures import Catalog, ManualStep, parse

SHIPPED = {
    "daily-health-check",
    "weekly-drift-review",
    "monthly-audit",
    "quarterly-model-validation",
    "camera-lens-inspection",
    "plc-inspection",
    "emergency-restore",
    "software-update",
    "weekly-reboot",
    "database-maintenance",
    "security-breach",
    "data-corruption",
    "annual-audit",
}


def test_the_shipped_procedures_load_and_suggest_schedules() -> None:
    files = Catalog().files()
    assert set(files) == SHIPPED
    for name, pf in files.items():
        assert pf.origin == "package" and len(pf.content_hash) == 64
        if not pf.procedure.runbook:  # runbooks start when an emergency is declared, not on a schedule
            assert pf.procedure.schedule is not None, name
    assert files["emergency-restore"].procedure.runbook
    assert all(s.within for s in files["emergency-restore"].procedure.steps)
    assert any(isinstance(s, ManualStep) and s.attachment for s in files["camera-lens-inspection"].procedure.steps)
    assert (resources.files("pitstop") / "procedures" / "plc-inspection.toml").is_file()


def test_yaml_and_toml_mean_the_same() -> None:
    yaml_text = """
name: quick
title: Quick look
steps:
  - id: look
    kind: manual
    title: Look
    instruction: Look at it.
    min: 1
    max: 2
"""
    toml_text = """
name = "quick"
title = "Quick look"
[[steps]]
id = "look"
kind = "manual"
title = "Look"
instruction = "Look at it."
min = 1
max = 2
"""
    assert parse(yaml_text, fmt="yaml") == parse(toml_text, fmt="toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\ntitle = 'X'\nsteps = []", "steps"),
        ("name = 'Bad Name'\ntitle = 'X'\n[[steps]]\nid='a'\nkind='manual'\ntitle='a'\ninstruction='a'", "name"),
        ("name = 'x'\ntitle = 'X'\n[[steps]]\nid='a'\nkind='teleport'\ntitle='a'", "steps"),
        ("name = 'x'\ntitle = 'X'\n[[steps]]\nid='a'\nkind='manual'\ntitle='a'\ninstruction='a'\nmin=3\nmax=1", "min"),
        (
            "name = 'x'\ntitle = 'X'\nsurprise = 1\n[[steps]]\nid='a'\nkind='manual'\ntitle='a'\ninstruction='a'",
            "surprise",
        ),
        ("name = ", "not valid TOML"),
    ],
)
def test_bad_procedure_files_are_named_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse(text, fmt="toml", where="p.toml")
    assert "\n" not in str(info.value)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["toml", "yaml"]))
def test_hostile_procedure_text_never_crashes(text: str, fmt: str) -> None:
    try:
        parse(text, fmt=fmt, where="fuzz")  # type: ignore[arg-type]
    except InvalidInput as exc:
        assert "\n" not in str(exc)


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "kind", "title", "instruction", "min", "max", "expected", "within", "command", "x"]),
        _scalar,
    )
)
def test_hostile_steps_are_rejected_cleanly(step: dict[str, object]) -> None:
    import yaml

    text = yaml.safe_dump({"name": "fuzz", "title": "Fuzz", "steps": [step]})
    with contextlib.suppress(InvalidInput):
        parse(text, fmt="yaml")


# -- cron ---------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 8 * * *", "2026-01-05T08:00", "2026-01-06T08:00"),
        ("0 8 * * *", "2026-01-05T07:59", "2026-01-05T08:00"),
        ("0 9 * * mon", "2026-01-05T09:00", "2026-01-12T09:00"),
        ("0 9 1 * *", "2026-01-15T00:00", "2026-02-01T09:00"),
        ("0 9 1 1,4,7,10 *", "2026-01-01T09:00", "2026-04-01T09:00"),
        ("*/15 * * * *", "2026-01-05T08:07", "2026-01-05T08:15"),
        ("30 2 29 2 *", "2026-03-01T00:00", "2028-02-29T02:30"),
        ("0 0 13 * fri", "2026-01-05T00:00", "2026-01-09T00:00"),  # day 13 OR Friday, as cron does
    ],
)
def test_cron_next_after(expr: str, after: str, expected: str) -> None:
    assert Cron.parse(expr).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("expr", ["", "* * * *", "61 * * * *", "* * * * 8", "*/0 * * * *", "a b c d e", "0 0 31 2 *"])
def test_bad_cron_is_rejected(expr: str) -> None:
    with pytest.raises(InvalidInput):
        Cron.parse(expr).next_after(at("2026-01-01T00:00"))


# -- planning -----------------------------------------------------------------------------------

T0 = at("2026-01-05T00:00")


def test_plan_orders_by_priority_then_due_date_and_explains_the_rest() -> None:
    slots = [Slot("a", T0 + timedelta(days=d), T0 + timedelta(days=d, hours=8), 4.0, frozenset({"a"})) for d in (1, 8)]
    slots.append(Slot("site-b", T0 + timedelta(days=2), T0 + timedelta(days=2, hours=8), 10.0, sites=frozenset({"b"})))
    jobs = [
        Job(1, "p1", "a", 4, T0 + timedelta(days=20), 3.0),
        Job(2, "p1", "a", 12, T0 + timedelta(days=20), 3.0),
        Job(3, "p1", "a", 4, T0 + timedelta(days=3), 1.0),
        Job(4, "p1", "a", 4, None, 2.0),
        Job(5, "p9", "c", 20, None, 1.0),
        Job(6, "p1", "a", 20, None, 6.0),
    ]
    result = plan(jobs, slots)
    placed = {p.order_id: p for p in result.placements}
    assert placed[2].start == slots[0].start  # highest priority first
    assert placed[3].start == slots[0].start and not placed[3].late  # earlier due date before the later one
    assert placed[1].start == slots[1].start and not placed[1].late
    assert set(placed) == {1, 2, 3}
    reasons = {u.order_id: u.reason for u in result.unplaced}
    assert "full" in reasons[4]
    assert "largest window" in reasons[6]
    assert reasons[5].startswith("no maintenance window")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.floats(0, 12), st.sampled_from(["", "x", "y"])), max_size=12),
    st.lists(
        st.tuples(st.integers(1, 20), st.floats(0.1, 10), st.sampled_from(["x", "y", "z"]), st.integers(0, 40)),
        max_size=60,
    ),
)
def test_plan_never_exceeds_capacity_and_accounts_for_every_order(
    windows: list[tuple[int, float, str]], orders: list[tuple[int, float, str, int]]
) -> None:
    slots = [
        Slot(
            f"w{i}", T0 + timedelta(days=d), T0 + timedelta(days=d, hours=4), cap, frozenset({s}) if s else frozenset()
        )
        for i, (d, cap, s) in enumerate(windows)
    ]
    jobs = [Job(i, "asset", site, prio, T0 + timedelta(days=due), h) for i, (prio, h, site, due) in enumerate(orders)]
    result = plan(jobs, slots)
    for slot, used in zip(result.slots, result.used_h, strict=True):
        assert used <= slot.capacity_h + 1e-6
    placed = {p.order_id for p in result.placements}
    assert placed | {u.order_id for u in result.unplaced} == set(range(len(jobs)))
    assert not placed & {u.order_id for u in result.unplaced}
    for p in result.placements:
        job = jobs[p.order_id]
        assert p.late == (p.end > job.due_at)  # type: ignore[operator]
