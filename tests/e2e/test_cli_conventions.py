"""One convention for the whole command line, checked over the whole command tree.

- every command's `--help` works and shows boolean flags as flags (no `<bool>`);
- every command that prints data takes `--json` (the exceptions are listed with their reason);
- every list and show prints a table or words on a demo database, never a Python repr
  (None, {}, [], ['a']); an empty list says "no ..." in words, not a bare header;
- one time parser: relative times (-2d, +6h, 30m) wherever a time is taken;
- `pitstop incidents` alone lists; the demo keeps its keys across restarts; a grouping asset
  without sensors leaves its site's status alone.

Commands run in this process through Typer's runner (a subprocess per command would cost a second
each); the demo database is built once for the module.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from pitstop.app import build
from pitstop.cli.main import app
from pitstop.cli.times import parse_span, parse_time
from pitstop.config import load_settings
from pitstop.core.types import Severity, Status
from pitstop.errors import InvalidInput, PitstopError
from pitstop.health.base import CheckResult
from pitstop.health.diagnostics import report
from pitstop.health.specs import CheckSpec

# -- the command tree --------------------------------------------------------------------------


def _tree(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, command) of `pitstop`, hidden aliases left out; a group that runs without a
    subcommand (`pitstop incidents`, `pitstop heal --plan`, `pitstop plan`) is a command too."""
    command = command if command is not None else typer.main.get_command(app)
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    if path and command.invoke_without_command:
        yield path, command
    for name, sub in sorted(subcommands.items()):
        if not sub.hidden:
            yield from _tree(sub, (*path, name))


COMMANDS = dict(_tree())

# Commands without --json, each with its reason.
NO_JSON = {
    ("serve",): "runs the service until it is stopped: it logs, it prints no data",
    ("demo",): "runs the demo service until it is stopped: it prints its URL and keys, then logs",
}


def test_the_walk_finds_the_whole_tree() -> None:
    assert len(COMMANDS) > 80
    assert {("check",), ("incidents",), ("incidents", "list"), ("models", "retrain"), ("rul", "calibration")} <= set(
        COMMANDS
    )
    assert not {p for p in COMMANDS if p[0] == "wo"}  # the hidden alias of workorders


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_exits_0_and_shows_flags_as_flags(path: tuple[str, ...]) -> None:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert done.exit_code == 0, done.output
    assert "Usage:" in done.output
    assert "<bool>" not in done.output


def test_the_root_help_shows_flags_as_flags() -> None:
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert done.exit_code == 0 and "--version" in done.output and "<bool>" not in done.output


def test_every_command_that_prints_data_takes_json() -> None:
    assert set(NO_JSON) <= set(COMMANDS), "an exception names a command that does not exist"
    missing = [
        " ".join(path)
        for path, command in COMMANDS.items()
        if path not in NO_JSON and "--json" not in {o for p in command.params for o in getattr(p, "opts", [])}
    ]
    assert not missing, f"commands without --json: {missing}"


def test_the_quarantine_reasons_in_the_help_are_the_real_ones() -> None:
    from pitstop.cli.ingest import REASONS as shown
    from pitstop.ingest import REASONS

    assert shown == REASONS


# -- times -------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [
        ("-2d", "ago", NOW - timedelta(days=2)),
        ("+6h", "ago", NOW + timedelta(hours=6)),
        ("30m", "ago", NOW - timedelta(minutes=30)),
        ("30m", "ahead", NOW + timedelta(minutes=30)),
        ("-1.5w", "ahead", NOW - timedelta(weeks=1.5)),
        (" -90s ", "ago", NOW - timedelta(seconds=90)),
        ("2026-03-01", "ago", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T08:00+01:00", "ago", datetime(2026, 3, 1, 7, 0, tzinfo=UTC)),
        ("2026-03-01T07:00Z", "ago", datetime(2026, 3, 1, 7, 0, tzinfo=UTC)),
    ],
)
def test_one_time_parser(text: str, bare: Any, expected: datetime) -> None:
    assert parse_time(text, now=NOW, option="--since", bare=bare) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-03-01T08:00", "needs a UTC offset"),
        ("yesterday", "is not ISO 8601 or relative"),
        ("-", "is not a span"),
        ("--2d", "is not a span"),
        ("+-2d", "is not a span"),
        ("2d3h", "is not ISO 8601 or relative"),
        ("-1e9d", "is not a span"),
        ("-999999999w", "longer than 100 years"),
        ("\x00-2d", "is not ISO 8601"),
        ("-2d\n; rm -rf /", "is not a span"),
        ("9" * 5000, "is not ISO 8601"),
        ("", "is not ISO 8601"),
    ],
)
def test_bad_times_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_time(text, now=NOW, option="--since")
    assert "--since" in str(caught.value) and len(str(caught.value)) < 200  # a hostile text is cut short


def test_a_span_near_the_calendars_end_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        parse_time("+99w", now=datetime(9999, 12, 1, tzinfo=UTC), option="--at")
    assert parse_span("2w") == timedelta(days=14)


# -- a demo database ---------------------------------------------------------------------------

SETTINGS = """
data_dir = "{data}"
[oncall]
link_secret = "a-test-secret-of-enough-length"
[oncall.contacts.ana]
name = "Ana Silva"
webhook = "http://127.0.0.1:9/ana"
[oncall.contacts.ben]
name = "Ben Okafor"
webhook = "http://127.0.0.1:9/ben"
webhook_format = "slack"
[oncall.schedules.maintenance]
rotation = ["ana", "ben"]
timezone = "Europe/Lisbon"
start = 2026-01-05
handoff = "08:00"
[[remediation.rules]]
match = "disk.low:{root}"
action = "free_disk"
params = {{ root = "{root}", patterns = ["*.mp4"], capacity_bytes = 1000, target_free_pct = 50, min_age_s = 0 }}
"""

REPR = re.compile(r"(?<![\w.-])None(?![\w-])|\{\}|\[\]|\['|\{'|\(\"")


@dataclass
class Demo:
    settings: Path
    data: Path
    incident: str
    order: int
    emergency: str

    def run(self, *args: str, code: int | tuple[int, ...] = 0) -> str:
        done = CliRunner().invoke(app, ["-c", str(self.settings), *args], env={"COLUMNS": "160"})
        if isinstance(done.exception, PitstopError):  # main() prints these as one line
            raise AssertionError(f"{args}: {done.exception}")
        codes = code if isinstance(code, tuple) else (code,)
        assert done.exit_code in codes, (args, done.output, done.exception)
        return done.output


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    from pitstop import demo as demo_installation

    root = tmp_path_factory.mktemp("demo")
    data = root / "data"
    settings = root / "pitstop.toml"
    recordings = root / "recordings"
    recordings.mkdir()
    for i in range(4):
        (recordings / f"{i}.mp4").write_bytes(b"x" * 100)
    settings.write_text(SETTINGS.format(data=data, root=recordings))
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("PITSTOP_")]:
            patch.delenv(name)
        patch.chdir(root)
        d = Demo(settings, data, f"disk.low:{recordings}", 0, "")
        d.run("db", "upgrade")
        pitstop = build(load_settings(settings))
        demo_installation.prepare(pitstop)  # the demo inventory and its keys
        d.run("sim", "backfill", "--days", "1", "--seed", "3")
        assert demo_installation.train_models(pitstop, trees=10)  # hvac-twin v1 champion, v2 challenger
        pitstop.incidents.open_or_update(d.incident, severity=Severity.WARNING, title="recordings disk low")
        pitstop.close()
        d.run("incidents", "ack", d.incident, "--note", "on it", "--by", "ana")
        d.run("heal", "run")  # free_disk waits for approval: remediation 1
        d.run("rul", "run")
        d.run("rul", "end", "pump-1", "--at", "-1h", "--code", "bearing_wear")
        d.run("silence", "add", "asset=pump-1", "--for", "2h", "--reason", "bearing swap")
        d.run("windows", "add", "night", "site=*", "--from", "22:00", "--to", "02:00")
        d.run("plan", "capacity", "night", "4")
        d.order = json.loads(d.run("wo", "open", "--key", "inspect.belt", "--title", "belt", "--due", "3d", "--json"))[
            "id"
        ]
        d.run("procedures", "enable", "weekly-drift-review")
        d.run("procedures", "run", "daily-health-check")
        d.run("kb", "lesson", d.incident, "Retention stopped after the upgrade")
        d.emergency = "emergency.flood:hall-a"
        d.run("emergency", "declare", d.emergency, "Water in hall A")
        d.run("log", "add", "note", "walked the hall", "--result", "ok")
        d.run("backup", "run")
        yield d


def _list_and_show(d: Demo) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(command path, its arguments) of every list and show, and the other commands that print a
    record or a report."""
    return [
        (("config", "show"), ()),
        (("db", "status"), ()),
        (("assets", "list"), ()),
        (("keys", "list"), ()),
        (("quarantine", "list"), ()),
        (("backup", "list"), ()),
        (("backup", "verify"), ()),
        (("incidents",), ()),
        (("incidents", "list"), ("--state", "all")),
        (("incidents", "show"), (d.incident,)),
        (("silence", "list"), ("--all",)),
        (("windows", "list"), ()),
        (("oncall", "now"), ()),
        (("oncall", "schedule"), ("maintenance", "--from", "-1d", "--days", "3")),
        (("oncall", "contacts"), ()),
        (("oncall", "escalations"), ("--all",)),
        (("heal",), ("--plan",)),
        (("heal", "list"), ()),
        (("heal", "show"), ("1",)),
        (("heal", "kpis"), ()),
        (("procedures", "list"), ()),
        (("procedures", "show"), ("plc-inspection",)),
        (("procedures", "schedules"), ()),
        (("workorders", "list"), ("--all",)),
        (("workorders", "show"), (str(d.order),)),
        (("plan",), ("--dry-run",)),
        (("log", "list"), ("--since", "-1d")),
        (("kb", "list"), ()),
        (("kb", "search"), ("disk",)),
        (("kb", "show"), ("storage-space",)),
        (("emergency", "timeline"), (d.emergency,)),
        (("models", "list"), ()),
        (("models", "history"), ("hvac-twin",)),
        (("models", "accuracy"), ("hvac-twin",)),
        (("rul", "show"), ("pump-1",)),
        (("rul", "ends"), ()),
        (("rul", "calibration"), ()),
        (("score",), ("--asset", "ahu-1", "--since", "-2d", "--baseline-hours", "6")),
    ]


def test_lists_and_shows_print_tables_or_words_never_reprs(demo: Demo) -> None:
    covered = set()
    for path, args in _list_and_show(demo):
        covered.add(path)
        shown = demo.run(*path, *args)
        assert shown.strip(), path
        assert not REPR.search(shown), f"{' '.join(path)} shows a Python repr: {REPR.search(shown)!r}\n{shown}"
        machine = demo.run(*path, *args, "--json")
        json.loads(machine)  # --json is JSON, nothing around it
    named = {p for p in COMMANDS if p[-1] in ("list", "show")}
    assert named <= covered, f"list/show commands this test does not run: {sorted(named - covered)}"


def test_check_on_the_demo_prints_no_repr_and_leaves_the_grouping_asset_out(demo: Demo) -> None:
    shown = demo.run("check", code=(0, 1, 2))
    assert not REPR.search(shown) and "hall-a-hvac: reports nothing of its own" in shown
    result = json.loads(demo.run("check", "--json", code=(0, 1, 2)))
    parts = {p["name"]: p for p in result["assets"] + result["sites"]}
    assert parts["hall-a-hvac"]["reports"] is False
    assert not any("hall-a-hvac" in r for r in parts["north-plant"]["reasons"] + result["installation"]["reasons"])
    silent = [c for c in result["checks"] if c["check"] == "freshness" and c["status"] != "healthy"]
    assert [c["target"] for c in silent if c["target"] == "hall-a-hvac"] == ["hall-a-hvac"]
    advice = " ".join(result["installation"]["recommendations"])
    assert ("silent sensors" in advice) == (len(silent) > 1), (silent, advice)  # only sensors that are silent


def test_incidents_alone_lists_the_active_ones(demo: Demo) -> None:
    assert demo.run("incidents", "--json") == demo.run("incidents", "list", "--json")
    assert demo.incident in demo.run("incidents")
    assert json.loads(demo.run("incidents", "--state", "all", "--json"))


def test_relative_times_are_taken_everywhere(demo: Demo) -> None:
    before = datetime.now(UTC)
    due = json.loads(demo.run("wo", "show", str(demo.order), "--json"))["due_at"]
    assert timedelta(days=2.9) < datetime.fromisoformat(due) - before < timedelta(days=3.1)  # --due 3d is ahead
    (end,) = json.loads(demo.run("rul", "ends", "pump-1", "--json"))
    assert timedelta(minutes=50) < before - datetime.fromisoformat(end["ended_at"]) < timedelta(minutes=70)
    logged = json.loads(demo.run("log", "list", "--since", "-1h", "--until", "+1h", "--json"))
    assert any(e["summary"] == "walked the hall" for e in logged)
    assert json.loads(demo.run("log", "list", "--until", "-1d", "--json")) == []
    assert json.loads(demo.run("oncall", "now", "--at", "+2h", "--json"))["on_call"]
    demo.run("score", "--asset", "ahu-2", "--since", "6h", "--baseline-hours", "6")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("score", "--asset", "ahu-1", "--since", "2026-01-01T00:00"), "--since"),
        (("log", "list", "--since", "yesterday"), "--since"),
        (("wo", "open", "--key", "k", "--title", "t", "--due", "soon"), "--due"),
        (("oncall", "now", "--at", "-2x"), "--at"),
        (("rul", "end", "pump-1", "--code", "x", "--at", "--1h"), "--at"),
        (("drift", "rebaseline", "hvac-twin", "--reason", "x", "--start", "\x00"), "--start"),
    ],
)
def test_a_bad_time_is_refused_with_the_option_named(demo: Demo, args: tuple[str, ...], option: str) -> None:
    done = CliRunner().invoke(app, ["-c", str(demo.settings), *args])
    assert isinstance(done.exception, InvalidInput) and done.exception.exit_code == 2, done.output
    assert str(done.exception).startswith(option)


def test_empty_lists_say_so_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("PITSTOP_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    base = ["--data-dir", str(tmp_path / "data")]
    assert CliRunner().invoke(app, [*base, "db", "upgrade"]).exit_code == 0
    empty = [
        ("assets", "list"),
        ("keys", "list"),
        ("incidents",),
        ("incidents", "list", "--state", "all"),
        ("silence", "list", "--all"),
        ("windows", "list"),
        ("quarantine", "list"),
        ("backup", "list"),
        ("heal", "list"),
        ("heal", "kpis"),
        ("heal", "--plan"),
        ("workorders", "list", "--all"),
        ("procedures", "schedules"),
        ("log", "list"),
        ("models", "list"),
        ("rul", "ends"),
        ("rul", "run"),
        ("rul", "calibration"),
        ("oncall", "now"),
        ("oncall", "contacts"),
        ("oncall", "escalations", "--all"),
    ]
    for args in empty:
        done = CliRunner().invoke(app, [*base, *args], env={"COLUMNS": "160"})
        assert done.exit_code == 0, (args, done.output, done.exception)
        said = done.output.strip()
        assert re.match(r"^(no |the quarantine is empty)", said), (args, said)
        assert not re.search("[┏┃━│─┌]", said) and not REPR.search(said), (args, said)
        json.loads(CliRunner().invoke(app, [*base, *args, "--json"]).output)


# -- the demo's keys ---------------------------------------------------------------------------


def test_the_demo_keeps_its_keys_across_restarts(tmp_path: Path) -> None:
    from pitstop import demo as demo_installation

    def start() -> tuple[str, str]:
        pitstop = build(load_settings(overrides={"data_dir": tmp_path}))
        try:
            return demo_installation.prepare(pitstop)
        finally:
            pitstop.close()

    first = start()
    assert first == start()  # a restart prints the same keys, and they still work
    kept = tmp_path / demo_installation.KEYS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert set(json.loads(kept.read_text()).values()) == set(first)
    pitstop = build(load_settings(overrides={"data_dir": tmp_path}))
    viewer_prefix = first[0].split("_")[1]
    assert pitstop.keys.authenticate(first[0]) is not None
    pitstop.keys.revoke(viewer_prefix, pitstop.clock.now())  # revoked by hand: replaced on the next start
    pitstop.close()
    second = start()
    assert second[0] != first[0] and second[1] == first[1]
    kept.chmod(0o644)
    kept.write_text("{not json")  # damaged: new keys, the file written again, readable by the user alone
    third = start()
    assert third[0] != second[0] and third[1] != second[1]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    pitstop = build(load_settings(overrides={"data_dir": tmp_path}))
    active = [k for k in pitstop.keys.list() if k.revoked_at is None]
    pitstop.close()
    assert sorted(k.name for k in active) == ["demo-operator", "demo-viewer"]  # the replaced ones revoked


# -- site status from the assets that report ---------------------------------------------------

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _result(target: str, status: Status, *, observed: dict[str, float] | None = None, **extra: Any) -> CheckResult:
    return CheckResult(
        check="frozen" if "/" in target else "freshness",
        target=target,
        status=status,
        summary=f"{target}: {status.value}",
        checked_at=extra.pop("at", AT),
        issue_key="data.stale",
        observed=observed or {},
        **extra,
    )


def _specs(*targets: str) -> list[CheckSpec]:
    return [CheckSpec("frozen" if "/" in t else "freshness", t, t.split("/")[0], "north-plant") for t in targets]


def test_a_grouping_asset_leaves_its_site_alone() -> None:
    specs = _specs("hall", "ahu-1", "ahu-1/temp")
    results = [
        _result("hall", Status.UNKNOWN),  # "asset hall has no sensors"
        _result("ahu-1", Status.HEALTHY, observed={"completeness_pct": 100.0}),
        _result("ahu-1/temp", Status.HEALTHY, observed={"changes": 5.0}),
    ]
    done = report(specs, results, now=AT, max_age=timedelta(minutes=5))
    assert done.sites["north-plant"].status is Status.HEALTHY and done.status is Status.HEALTHY
    assert done.installation.expected == 2 and done.installation.recommendations == []
    hall = done.assets["hall"]
    assert (hall.reports, hall.status) == (False, Status.UNKNOWN) and hall.as_dict()["reports"] is False
    assert done.assets["ahu-1"].reports is True


@pytest.mark.parametrize(
    ("hall", "extra_specs"),
    [
        (_result("hall", Status.UNKNOWN, error="boom"), ()),  # the check broke: news
        (_result("hall", Status.UNKNOWN, at=AT - timedelta(hours=1)), ()),  # stale: news
        (_result("hall", Status.UNKNOWN, observed={"stale": 1.0}), ()),  # it observed something
        (_result("hall", Status.UNKNOWN), ("hall/vib",)),  # it has a sensor a check looks at
    ],
)
def test_an_asset_that_should_report_still_makes_its_site_unknown(hall: CheckResult, extra_specs: tuple[str]) -> None:
    specs = _specs("hall", "ahu-1", *extra_specs)
    results = [hall, _result("ahu-1", Status.HEALTHY, observed={"completeness_pct": 100.0})]
    results += [_result(t, Status.HEALTHY, observed={"changes": 1.0}) for t in extra_specs]
    done = report(specs, results, now=AT, max_age=timedelta(minutes=5))
    assert done.assets["hall"].reports is True
    assert done.sites["north-plant"].status is Status.UNKNOWN and done.installation.expected == len(specs)
