"""Words where the dashboard showed data: incident evidence as a sentence and a table of signals, knowledge-base
Markdown rendered and sanitized, an HTML 404 for unknown dashboard paths, no Predict form for viewers."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.app import Pitstop
from pitstop.core.types import Role, Severity, Status
from pitstop.health.base import CheckResult
from pitstop.ml.explanations import Contribution
from pitstop.ml.scoring import Finding
from pitstop.prognostics.store import Estimate
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.testing.clock import FrozenClock
from pitstop.web.evidence import deviation, facts, inline, num, parse, read, sparkline
from tests.integration.test_web_pages import login


def _main(html: str) -> str:
    """The page's own content: between <main> and </main>."""
    return html.split("<main", 1)[1].split("</main>", 1)[0]


def _write(p: Pitstop, asset: str, sensor: str, start_s: float, end_s: float, value: float) -> None:
    sensor_id = next(s.id for s in p.assets.sensors(asset) if s.name == sensor)
    ts = np.arange(int(start_s * 1e6), int(end_s * 1e6), 60_000_000, dtype=np.int64)
    p.readings.write(ReadingBatch.of(np.full(len(ts), sensor_id), ts, np.full(len(ts), value)))


@pytest.fixture
def anomaly(demo_pitstop: Pitstop, clock: FrozenClock) -> int:
    """fan-1's vibration, 2.5 mm/s for a day, then 7.8 for two hours; the stream scorer's own report of it."""
    p = demo_pitstop
    now = clock.now()
    start, end = now - timedelta(hours=2), now - timedelta(minutes=1)
    for sensor, usual, found in (("vib_rms", 2.5, 7.8), ("vib_kurtosis", 3.0, 4.2)):
        _write(p, "fan-1", sensor, (start - timedelta(hours=26)).timestamp(), start.timestamp(), usual)
        _write(p, "fan-1", sensor, start.timestamp(), now.timestamp(), found)
    signals = [Contribution("vib_rms", 0.71), Contribution("vib_kurtosis", 0.21), Contribution("vib_crest", 0.08)]
    p.scoring.report(Finding("fan-1", start, end, 42, 120, 14.2, 6.1, signals))
    incident = p.incidents.active("asset.anomaly:fan-1")
    assert incident is not None and incident.detail is not None and '"top_signals"' in incident.detail
    return incident.id


def test_stream_scoring_evidence_reads_as_a_sentence_and_a_table(
    client: TestClient, keys: dict[Role, str], anomaly: int
) -> None:
    login(client, keys[Role.VIEWER])
    html = client.get(f"/ui/incidents/{anomaly}").text
    section = html.split('id="evidence"', 1)[1].split("</section>", 1)[0]
    assert (
        '<p class="sentence">fan-1: vib_rms 7.8 mm/s, 3.1× its usual 2.5; vib_kurtosis up 40 %; vib_crest (8% of the '
        "score) — look at the bearing first.</p>"
    ) in section
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", section)
    assert rows == [
        ("vib_rms", "7.8 mm/s", "2.5 mm/s", "3.1×"),
        ("vib_kurtosis", "4.2", "3", "+40 %"),
        ("vib_crest", "—", "—", "—"),  # no readings of it: its share only
    ]
    assert section.count('<svg class="spark"') == 2
    assert "42 of 120 readings scored as abnormal" in section and "cut-off of 6.1" in section
    assert 'href="/ui/kb/bearing-wear"' in section.split('id="advice"', 1)[1].split("·", 1)[0]  # first
    assert "{" not in _main(html) and "top_signals" not in html


def test_the_asset_page_lists_its_findings_in_words(client: TestClient, keys: dict[Role, str], anomaly: int) -> None:
    login(client, keys[Role.VIEWER])
    findings = client.get("/ui/assets/fan-1").text.split('id="findings"', 1)[1].split("</section>", 1)[0]
    assert "fan-1: vib_rms (71% of the score); vib_kurtosis (21% of the score)" in findings
    assert "look at the bearing first" in findings and "{" not in findings


def test_remaining_life_evidence(client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]) -> None:
    now = demo_pitstop.clock.now()
    evidence = {"health_sensor": "vib_rms", "healthy_level": 2.0, "failure_level": 3.0, "hours_read": 90}
    evidence["recent_health"] = [1.0 + i / 20 for i in range(24)]
    estimate = Estimate(7, "pump-1", "rul-wiener", now, 120.0, 80.0, 160.0, 0.8, 2.2, 1, json.dumps(evidence))
    detail = json.dumps({"estimate": estimate.as_dict(), "lead_time_h": 168})  # what prognostics writes
    item, _ = demo_pitstop.incidents.open_or_update(
        "asset.rul_low:pump-1", severity=Severity.WARNING, title="pump-1: 120 h left", detail=detail
    )
    login(client, keys[Role.VIEWER])
    html = client.get(f"/ui/incidents/{item.id}").text
    due = (now + timedelta(hours=80)).strftime("%Y-%m-%d %H:%M UTC")
    assert (
        "pump-1: about 120 h of life left (80–160 h, 80%), under a lead time of 168 h; vib_rms at 2.2× its healthy "
        f"level, failure expected near 3.0× — plan work on the bearing before {due}."
    ) in html
    assert "<td><code>vib_rms (health index)</code></td><td>4.4 mm/s</td><td>2 mm/s</td><td>2.20×</td>" in html
    assert "{" not in _main(html)


def test_check_evidence_shows_observed_metrics_against_their_usual(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], clock: FrozenClock
) -> None:
    p = demo_pitstop
    for free in (31.0, 30.0, 29.0, 8.0):
        clock.advance(timedelta(minutes=5))
        status = Status.CRITICAL if free < 10 else Status.HEALTHY
        observed = {"free_pct": free, "free_bytes": free * 1e9}
        p.health.results.save(
            [
                CheckResult(
                    check="disk",
                    target="/data",
                    status=status,
                    summary=f"{free:g} % free",
                    checked_at=clock.now(),
                    issue_key="disk.low",
                    observed=observed,
                )
            ]
        )
    item, _ = p.incidents.open_or_update(
        "disk.low:/data", severity=Severity.CRITICAL, title="disk.low on /data", detail="8 % free", source="check:disk"
    )
    login(client, keys[Role.VIEWER])
    section = client.get(f"/ui/incidents/{item.id}").text.split('id="evidence"', 1)[1].split("</section>", 1)[0]
    assert '<p class="sentence">8 % free</p>' in section
    assert "<td><code>free pct</code></td><td>8</td><td>30</td><td>-73 %</td>" in section
    assert "Latest check" in section and "critical" in section and '<svg class="spark"' in section


def test_unknown_json_is_a_table_and_text_stays_text(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    odd = {"reason_code": "E42", "limits": {"low_water": 1.23456}, "seen": [1, 2, 3], "at": "2025-06-01T10:00:00+00:00"}
    odd_item, _ = demo_pitstop.incidents.open_or_update(
        "plugin.odd:x", severity=Severity.WARNING, title="odd", detail=json.dumps(odd)
    )
    text_item, _ = demo_pitstop.incidents.open_or_update(
        "plugin.text:x", severity=Severity.WARNING, title="text", detail="line one\nline two"
    )
    demo_pitstop.incidents.suppress("plugin.text:x", reason="known, fixed on Monday", actor="ann")
    login(client, keys[Role.VIEWER])
    html = client.get(f"/ui/incidents/{odd_item.id}").text
    for name, value in (("reason code", "E42"), ("limits · low water", "1.23"), ("seen", "1; 2; 3")):
        assert f'<tr><th scope="row">{name}</th><td>{value}</td></tr>' in html
    assert "2025-06-01 10:00 UTC" in html and "{" not in _main(html)
    html = client.get(f"/ui/incidents/{text_item.id}").text
    assert '<p class="sentence">line one\nline two</p>' in html
    assert "reason: known, fixed on Monday" in html.split('class="timeline"', 1)[1]  # the timeline in words
    assert "{" not in _main(html)


def test_an_unknown_dashboard_path_is_an_html_page(client: TestClient, keys: dict[Role, str]) -> None:
    response = client.get("/ui/nope")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "No such page" in response.text and 'href="/ui/login"' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    login(client, keys[Role.VIEWER])
    for path in ("/ui/nope", "/ui/kb/x/y/z", "/ui/models/hvac-twin/nothing/here"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "<nav>" in response.text and 'href="/ui/incidents"' in response.text  # the layout, links back
        assert "<code>" + path + "</code>" in response.text
    hostile = client.get("/ui/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert hostile.status_code == 404 and "<script>alert" not in hostile.text
    api = client.get("/api/nope")  # the API keeps its JSON errors
    assert api.status_code == 404 and api.json()["error"]["code"] == "http.404"
    static = client.get("/ui/static/nope.css")
    assert static.status_code == 404 and not static.headers["content-type"].startswith("text/html")


def test_knowledge_base_entries_are_rendered_markdown(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    user = demo_pitstop.settings.data_dir / "kb"
    user.mkdir(parents=True)
    (user / "hostile.md").write_text(
        "---\ntitle: Hostile\n---\n## Steps\n\n- one\n- two\n\n<script>alert(1)</script>\n\n"
        "[click](javascript:alert(1)) [ok](/ui/kb)\n"
    )
    demo_pitstop.maintenance.kb.sync()
    login(client, keys[Role.VIEWER])
    html = client.get("/ui/kb/bearing-wear").text
    body = html.split('<div class="markdown">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Symptoms</h2>" in body and "<h2>What to do</h2>" in body and "<li>" in body and "<ol>" in body
    assert "## " not in body and "<pre" not in body
    html = client.get("/ui/kb/hostile").text
    assert "<h2>Steps</h2>" in html and "<li>one</li>" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html and '<a href="/ui/kb">ok</a>' in html
    found = client.get("/ui/kb", params={"q": "bearings"}).text
    assert re.findall(r'href="/ui/kb/([a-z0-9-]+)"', _main(found))[0] == "bearing-wear"


def test_lessons_learned_are_rendered_markdown(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str]
) -> None:
    item, _ = demo_pitstop.incidents.open_or_update("disk.low:/data", severity=Severity.WARNING, title="disk")
    demo_pitstop.maintenance.kb.add_lesson(item.key, "**Retention** had stopped.\n\n- restart it", author="tom")
    login(client, keys[Role.VIEWER])
    html = client.get(f"/ui/incidents/{item.id}").text
    assert "<strong>Retention</strong> had stopped." in html and "<li>restart it</li>" in html


# -- the words themselves ----------------------------------------------------------------------------------


def test_numbers_read_as_a_person_writes_them() -> None:
    assert [num(v) for v in (7.8, 2.5, 0.01234, 123.4, 12345.6, 0.0, -3.0, 1.0)] == [
        "7.8",
        "2.5",
        "0.0123",
        "123",
        "12,346",
        "0",
        "-3",
        "1",
    ]
    assert num(float("nan")) == "nan"


def test_deviation_words() -> None:
    assert deviation(7.8, 2.5, "mm/s") == ("3.1×", "3.1× its usual 2.5")
    assert deviation(4.2, 3.0, "") == ("+40 %", "up 40 %")
    assert deviation(2.7, 3.0, "") == ("-10 %", "down 10 %")
    assert deviation(3.0, 3.0, "") == ("as usual", "as usual")
    assert deviation(3.09, 3.0, "") == ("+3 %", "as usual")  # a small change: the table keeps it
    assert deviation(61.0, 51.5, "°C") == ("+9.5 °C", "9.5 °C above its usual 51.5")  # temperatures: a difference
    assert deviation(-2.0, 0.0, "bar") == ("-2 bar", "2 bar below its usual 0")


def test_shapes_not_known_never_show_json() -> None:
    assert (
        parse(None) is None and parse("  ") is None and parse("plain") == "plain" and parse("{not json") == "{not json"
    )
    assert parse('["a list"]') == '["a list"]'  # not an object: shown as the text it is
    evidence = read('{"a": {"b": [1, 2]}, "ok": true, "none": null}')
    assert evidence.kind == "data" and evidence.facts == [("a · b", "1; 2"), ("ok", "yes"), ("none", "—")]
    assert inline({"reason": "x", "paged": [{"to": "ann"}]}) == "reason: x; paged: to ann"
    assert len(facts({f"k{i}": i for i in range(100)})) == 40
    finding = read('{"asset": "p", "evidence": {}, "top_signals": [{"signal": 3}, {"signal": "coil UCAOT"}]}')
    assert finding.sentence == "p: coil UCAOT (— of the score) — look at the coil and its valve first."
    assert read('{"estimate": {"median_h": "x"}}').kind == "data"  # not a whole estimate: a table


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=15), inner, max_size=5),
    max_leaves=30,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "asset": json_values,
        "evidence": json_values,
        "top_signals": json_values,
        "estimate": st.fixed_dictionaries(
            {"median_h": st.floats(allow_nan=False), "lower_h": st.floats(allow_nan=False)},
            optional={"at": json_values, "evidence": json_values, "upper_h": json_values, "health": json_values},
        ),
        "lead_time_h": json_values,
        "flagged_rows": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(data=shaped | st.dictionaries(st.text(max_size=15), json_values, max_size=8))
def test_any_detail_reads_without_failing(data: dict[str, object]) -> None:
    """Whatever a producer (or a plugin) put in the detail, the page gets words, never an error."""
    evidence = read(json.dumps(data))
    assert evidence.kind in {"anomaly", "rul", "data", "none", "text"}
    assert isinstance(evidence.sentence, str) and all(isinstance(v, str) for _, v in evidence.facts)


def test_odd_parts_of_known_shapes() -> None:
    huge = read(json.dumps({"estimate": {"median_h": 1e300, "lower_h": 1e300, "at": "2025-01-01T00:00:00"}}))
    assert huge.kind == "data"  # no date that far: a table, not an error
    odd = read(json.dumps({"estimate": {"median_h": 5, "lower_h": 2, "evidence": {"recent_health": 3}}}))
    assert odd.kind == "rul" and odd.sentence.startswith("About 5 h of life left")


def test_sparkline() -> None:
    svg = str(sparkline([(float(i), float(i % 7)) for i in range(5000)], lines=[3.0], mark=(10.0, 20.0), label="<x>"))
    assert svg.startswith('<svg class="spark"') and "&lt;x&gt;" in svg and "<x>" not in svg
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None and len(points.group(1).split()) <= 160  # one point a pixel column
    level = str(sparkline([(0.0, 1.0), (0.4, 3.0), (200.0, 2.0)], width=160))  # 0 and 0.4 share a column: mean 2
    assert 'points="1.0,16.0 159.0,16.0"' in level and "<rect" not in level
    assert "<rect" in svg and "stroke-dasharray" in svg
    assert str(sparkline([(0.0, 1.0)])) == "" and str(sparkline([(0.0, float("nan")), (1.0, 2.0)])) == ""
