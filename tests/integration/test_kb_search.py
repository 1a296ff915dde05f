"""Knowledge-base search on word stems, ranked, on SQLite and PostgreSQL; an entry for each fault pitstop detects;
the entries' Markdown rendered safely."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitstop.app import Pitstop
from pitstop.maintenance.kb import parse_entry
from pitstop.maintenance.kb_search import SearchIndex, stem, stems
from pitstop.web.markdown import render_markdown, safe_link

# Every issue key pitstop raises today (built-in checks, stream scoring, prognostics, model checks, backups).
RAISED = [
    "cpu.high:localhost",
    "memory.high:localhost",
    "disk.low:/var/lib/pitstop",
    "service.down:mosquitto",
    "process.memory:pitstop",
    "updates.pending:localhost",
    "network.interface:eth0",
    "sensor.threshold:vms-server/camera_latency_ms",
    "predict.latency:*",
    "http.failing:http://127.0.0.1:8000/api/health",
    "link.down:plc-1:502",
    "camera.down:rtsp://cam-1/stream",
    "camera.image:cam-1",
    "plc.link:plc-1",
    "mqtt.down:127.0.0.1:1883",
    "database.down:pitstop",
    "postgres.unhealthy:pitstop",
    "database.activity:pitstop",
    "log.errors:/var/log/syslog",
    "data.stale:ahu-1",
    "sensor.limit:vms-server/disk_free_pct",
    "sensor.frozen:ahu-1/UCAOT",
    "loop.setpoint:ahu-1",
    "loop.heat_balance:ahu-1",
    "loop.coil_ua:ahu-2",
    "job.overdue:backup",
    "scheduler.stalled:pitstop",
    "model.drift:hvac-twin",
    "model.accuracy:hvac-twin",
    "backup.overdue:backups",
    "backup.rpo:backups",
    "backup.never:backups",
    "backup.drill:backups",
    "backup.rto:backups",
    "backup.backup_failed:pitstop",
    "asset.anomaly:pump-1",
    "asset.rul_low:pump-1",
]


FIRST = {
    "bearing": "bearing-wear",
    "bearings": "bearing-wear",
    "BEARING": "bearing-wear",
    "vibrating": "bearing-wear",
    "coil fouling": "coil-fouling",
    "fouled coil": "coil-fouling",
    "stuck valve": "stuck-valve",
    "frozen sensor": "frozen-sensor",
    "sensors drifting": "sensor-drift",
    "mqtt broker": "mqtt-broker",
    "restore drill": "backup-problems",
    "recordings retention": "storage-space",
    "vacuum bloat": "database-degradation",
}


def test_a_fault_is_found_by_any_form_of_its_words(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    found = {query: [e.slug for e in kb.search(query)][:1] for query in FIRST}
    assert found == {query: [slug] for query, slug in FIRST.items()}


def test_words_that_say_nothing_match_nothing(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    assert kb.search("the of and") == [] and kb.search("xyzzy plugh") == [] and kb.search("\x00 \x00") == []
    assert [e.slug for e in kb.search("the bearing")] == [e.slug for e in kb.search("bearing")]


def test_the_title_and_tags_count_more_than_the_body(pitstop: Pitstop) -> None:
    user = pitstop.settings.data_dir / "kb"
    user.mkdir(parents=True)
    body = "Check the gearbox oil.\n" + "Routine words about nothing in particular.\n" * 20
    (user / "in-body.md").write_text(f"---\ntitle: Routine inspection\n---\n{body}")
    (user / "in-title.md").write_text("---\ntitle: Gearbox oil leaks\n---\nWipe, find the seal, replace it.\n")
    (user / "in-tags.md").write_text("---\ntitle: Noisy drive\ntags: [gearbox]\n---\nListen to it.\n")
    kb = pitstop.maintenance.kb
    kb.sync()
    assert [e.slug for e in kb.search("gearboxes")] == ["in-title", "in-tags", "in-body"]
    assert next(e.slug for e in kb.search("gearbox oil")) == "in-title"  # both words beat one
    assert len(kb.search("gearbox", limit=2)) == 2


def test_the_index_follows_changed_entries(pitstop: Pitstop) -> None:
    """A sync, a lesson, or another process writing the same database: the next search sees it."""
    kb = pitstop.maintenance.kb
    assert kb.search("impeller") == []
    user = pitstop.settings.data_dir / "kb"
    user.mkdir(parents=True)
    (user / "impeller-wear.md").write_text("---\ntitle: Impeller wear\ntags: [pump]\n---\nCavitation pits.\n")
    kb.sync()
    assert [e.slug for e in kb.search("impellers")] == ["impeller-wear"]
    lesson = kb.add_lesson("asset.anomaly:pump-1", "The impeller was eroded by cavitation.", author="ann")
    kb.lesson_to_entry(lesson.id, slug="bearing-wear")
    assert {e.slug for e in kb.search("eroded")} == {"bearing-wear"}


def test_issue_keys_are_searchable(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    assert kb.search("sensor.frozen")[0].slug == "frozen-sensor"
    assert kb.search("loop.coil_ua")[0].slug == "coil-fouling"
    assert kb.search("rul_low")[0].slug == "bearing-wear"


def test_every_fault_pitstop_raises_has_an_entry(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    missing = [key.partition(":")[0] for key in RAISED if not kb.recommendations_for(key)]
    assert not missing, f"no knowledge-base entry is linked to {missing}"
    for entry in kb.entries():
        for heading in ("## Symptoms", "## Likely causes", "## What to do"):
            assert heading in entry.body, f"{entry.slug} has no {heading!r} section"


def test_the_bearing_entry_is_recommended_for_the_demo_faults(pitstop: Pitstop) -> None:
    kb = pitstop.maintenance.kb
    assert [e.slug for e in kb.recommendations_for("asset.rul_low:pump-1")] == ["bearing-wear"]
    assert "bearing-wear" in [e.slug for e in kb.recommendations_for("asset.anomaly:pump-1")]
    assert [e.slug for e in kb.recommendations_for("loop.coil_ua:ahu-2")] == ["coil-fouling"]


def test_stems() -> None:
    assert stem("bearings") == stem("bearing") == "bear"
    assert stem("vibration") == stem("vibrating") == stem("vibrations")
    assert stems("Sensor.FROZEN, rul_low; the valves!") == ["sensor", "frozen", "rul", "low", "valv"]
    assert stems("") == [] and stems("... ---") == []


def test_the_index_ranks_rarer_words_higher() -> None:
    entries = [
        parse_entry("---\ntitle: Pump noise\n---\nA pump that rattles.\n", "a"),
        parse_entry("---\ntitle: Pump seal\n---\nA pump seal that leaks.\n", "b"),
        parse_entry("---\ntitle: Pump start\n---\nA pump that will not start.\n", "c"),
    ]
    index = SearchIndex(entries)
    assert next(slug for slug, _ in index.search("pump leaks")) == "b"
    ranked = index.search("pump")
    assert len(ranked) == 3 and all(score > 0 for _, score in ranked)
    assert [slug for slug, _ in ranked] == ["a", "b", "c"]  # the same title: the shorter body first
    assert SearchIndex([]).search("pump") == []


def test_kb_search_bearing_on_the_command_line(tmp_path: Path) -> None:
    from pitstop.cli.main import app

    cli = CliRunner()

    def run(*args: str) -> str:
        done = cli.invoke(app, ["--data-dir", str(tmp_path), *args], env={"COLUMNS": "200"})
        assert done.exit_code == 0, f"{args}: {done.output} {done.exception!r}"
        return done.output

    run("db", "upgrade")
    found = json.loads(run("kb", "search", "bearing", "--json"))
    assert found[0]["slug"] == "bearing-wear"
    shown = run("kb", "search", "bearing")
    assert "bearing-wear" in shown and shown.index("bearing-wear") < shown.index("asset-anomaly")


# -- the entries' Markdown on the page ---------------------------------------------------------------


def test_every_shipped_entry_renders_headings_and_lists(pitstop: Pitstop) -> None:
    for entry in pitstop.maintenance.kb.entries():
        html = str(render_markdown(entry.body))
        assert "<h2>" in html and ("<ul>" in html or "<ol>" in html), entry.slug
        assert "## " not in html and "<script" not in html, entry.slug


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        '<a href="javascript:alert(1)">click</a>',
    ],
)
def test_hostile_markdown_is_neutralized(source: str) -> None:
    html = str(render_markdown(f"# Title\n\n{source}\n"))
    tags = _tags(html)
    assert {name for name, _ in tags} <= {"h1", "p", "a", "code"}, html
    for _name, attrs in tags:
        assert not any(a.startswith("on") for a in attrs), html
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript", "vbscript", "data")), html
    assert "<h1>Title</h1>" in html


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every element of an HTML fragment with its attributes, as a browser's parser reads them."""
    found: list[tuple[str, dict[str, str | None]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

    Collect().feed(html)
    return found


def test_safe_links_are_kept() -> None:
    html = str(render_markdown("[a](https://example.org/x) [b](/ui/kb/bearing-wear) [c](mailto:ops@plant) [d](#top)"))
    assert 'href="https://example.org/x" rel="noopener noreferrer"' in html
    assert 'href="/ui/kb/bearing-wear"' in html and 'href="mailto:ops@plant"' in html and 'href="#top"' in html
    assert not safe_link("javascript:alert(1)") and not safe_link(" JAVASCRIPT:x") and not safe_link("java\nscript:x")
    assert safe_link("relative/path") and safe_link("https://x") and not safe_link("file:///etc/passwd")


def test_markdown_tables_and_code_render() -> None:
    html = str(render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nx < y\n```\n"))
    assert "<table>" in html and "<td>1</td>" in html and "<pre><code>x &lt; y" in html
    assert str(render_markdown(None)) == "" and str(render_markdown("")) == ""
