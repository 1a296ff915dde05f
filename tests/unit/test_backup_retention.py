"""Retention tiers: properties over random backup calendars, and six simulated years by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pitstop.backup.retention import TIERS, Policy, decide

START = datetime(2020, 1, 1, 2, 0, tzinfo=UTC)

calendars = st.lists(st.integers(min_value=0, max_value=6 * 365 * 24), min_size=0, max_size=120, unique=True).map(
    lambda hours: [(f"s{h:06d}", START + timedelta(hours=h)) for h in hours]
)
policies = st.builds(
    Policy,
    keep_last=st.integers(0, 5),
    daily=st.integers(0, 10),
    weekly=st.integers(0, 6),
    monthly=st.integers(0, 14),
    quarterly=st.integers(0, 8),
    yearly=st.integers(0, 4),
)


@settings(max_examples=200, deadline=None)
@given(calendars, policies)
def test_every_set_is_decided_once_and_kept_sets_say_why(items: list[tuple[str, datetime]], policy: Policy) -> None:
    decisions = decide(items, policy)
    assert sorted(d.id for d in decisions) == sorted(i for i, _ in items)
    assert [d.at for d in decisions] == sorted((at for _, at in items), reverse=True)
    if policy.empty:
        assert all(d.keep for d in decisions)
        return
    assert all(r in {"last", *(name for name, _ in TIERS)} for d in decisions for r in d.reasons)
    limit = policy.keep_last + policy.daily + policy.weekly + policy.monthly + policy.quarterly + policy.yearly
    assert sum(d.keep for d in decisions) <= limit
    if decisions:
        assert decisions[0].keep  # the newest set is always kept by a non-empty policy


@settings(max_examples=200, deadline=None)
@given(calendars, policies)
def test_each_tier_keeps_the_newest_set_of_its_last_n_periods(
    items: list[tuple[str, datetime]], policy: Policy
) -> None:
    decisions = decide(items, policy)
    for name, period in TIERS:
        n = getattr(policy, name)
        newest_per_period: dict[tuple[int, ...], str] = {}
        for d in decisions:  # newest first
            newest_per_period.setdefault(period(d.at), d.id)
        expected = set(list(newest_per_period.values())[:n])
        assert {d.id for d in decisions if name in d.reasons} == expected


@settings(max_examples=100, deadline=None)
@given(calendars, policies)
def test_pruning_again_deletes_nothing(items: list[tuple[str, datetime]], policy: Policy) -> None:
    kept = [(d.id, d.at) for d in decide(items, policy) if d.keep]
    assert all(d.keep for d in decide(kept, policy))


@settings(max_examples=100, deadline=None)
@given(calendars, policies, st.sampled_from(["keep_last", "daily", "weekly", "monthly", "quarterly", "yearly"]))
def test_a_larger_tier_never_keeps_fewer_sets(items: list[tuple[str, datetime]], policy: Policy, tier: str) -> None:
    assume(not policy.empty)  # an empty policy keeps everything
    bigger = Policy(**{**{f: getattr(policy, f) for f in Policy.__dataclass_fields__}, tier: getattr(policy, tier) + 1})
    kept = {d.id for d in decide(items, policy) if d.keep}
    assert kept <= {d.id for d in decide(items, bigger) if d.keep}


def test_six_years_of_daily_backups_keep_exactly_the_expected_sets() -> None:
    """Daily at 02:00 from 2020-01-01 to 2025-12-31; 7 daily, 4 weekly, 12 monthly, 20 quarterly, 10 yearly."""
    days = (date(2025, 12, 31) - date(2020, 1, 1)).days + 1
    items = [(f"{START + timedelta(days=d):%Y-%m-%d}", START + timedelta(days=d)) for d in range(days)]
    policy = Policy(daily=7, weekly=4, monthly=12, quarterly=20, yearly=10)
    kept = {d.id: set(d.reasons) for d in decide(items, policy) if d.keep}

    daily = [f"2025-12-{d}" for d in range(25, 32)]
    # 2025-12-31 is a Wednesday of ISO week 2026-W01; then the Sundays ending the weeks before.
    weekly = ["2025-12-31", "2025-12-28", "2025-12-21", "2025-12-14"]
    month_ends = ["01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30"]
    monthly = [f"2025-{m}" for m in month_ends] + ["2025-12-31"]
    quarterly = [f"{y}-{q}" for y in range(2021, 2026) for q in ("03-31", "06-30", "09-30", "12-31")]
    yearly = [f"{y}-12-31" for y in range(2020, 2026)]  # only six years exist; the tier keeps them all

    expected = set(daily) | set(weekly) | set(monthly) | set(quarterly) | set(yearly)
    assert len(expected) == 37
    assert set(kept) == expected
    for tier, ids in (
        ("daily", daily),
        ("weekly", weekly),
        ("monthly", monthly),
        ("quarterly", quarterly),
        ("yearly", yearly),
    ):
        assert {i for i, why in kept.items() if tier in why} == set(ids), tier
    assert kept["2020-12-31"] == {"yearly"}
    assert kept["2021-03-31"] == {"quarterly"}


def test_keep_last_counts_sets_not_periods() -> None:
    items = [(f"s{i}", START + timedelta(minutes=i)) for i in range(5)]
    decisions = decide(items, Policy(keep_last=3))
    assert [d.id for d in decisions if d.keep] == ["s4", "s3", "s2"]
    assert decisions[0].reasons == ("last",)
