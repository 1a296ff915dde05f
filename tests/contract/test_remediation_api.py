"""/api/remediations: viewers read, operators approve, reject and reset; /metrics has the KPIs."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi.testclient import TestClient

from pitstop.app import Pitstop
from pitstop.config.remediation import CommandSettings, RemediationSettings, RuleSettings
from pitstop.core.types import Role, Severity
from pitstop.incidents import Incident
from pitstop.remediation import RemediationEngine
from tests.conftest import auth


def _engine(pitstop: Pitstop, marker: Path) -> RemediationEngine:
    touch = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]
    settings = RemediationSettings(
        rules=[RuleSettings(match="service.down:*", action="run_command", params={"command": "fix"}, max_attempts=1)],
        commands={"fix": CommandSettings(argv=touch)},  # destructive: needs approval
        verify_timeout_s=0.01,
    )

    def verify(incident: Incident) -> tuple[bool, str]:
        return marker.exists(), "marker there" if marker.exists() else "no marker"

    return RemediationEngine(
        settings,
        clock=pitstop.clock,
        db=pitstop.db,
        incidents=pitstop.incidents,
        verifier=verify,
        escalate=lambda to, incident, title, body: (True, "sent"),
        sleep=lambda s: None,
    )


def test_list_approve_reject_and_roles(
    client: TestClient, demo_pitstop: Pitstop, keys: dict[Role, str], tmp_path: Path
) -> None:
    marker = tmp_path / "fixed"
    demo_pitstop.remediation = engine = _engine(demo_pitstop, marker)
    demo_pitstop.incidents.open_or_update("service.down:worker", severity=Severity.WARNING, title="worker down")
    viewer, operator = auth(keys[Role.VIEWER]), auth(keys[Role.OPERATOR])

    [preview] = client.get("/api/remediations/plan", headers=viewer).json()
    assert preview["decision"] == "await approval"
    [rid] = engine.run_pass()
    [listed] = client.get("/api/remediations", headers=viewer).json()
    assert listed["state"] == "awaiting_approval" and not marker.exists()
    assert client.get("/api/remediations").status_code == 401
    assert client.post(f"/api/remediations/{rid}/approve", json={}, headers=viewer).status_code == 403
    approved = client.post(f"/api/remediations/{rid}/approve", json={"reason": "go"}, headers=operator)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    engine.run_pass()
    one = client.get(f"/api/remediations/{rid}", headers=viewer).json()
    assert one["state"] == "healed" and [s["step"] for s in one["steps"]][-1] == "resolved"
    assert client.post(f"/api/remediations/{rid}/reject", json={}, headers=operator).status_code == 400
    assert client.get("/api/remediations/999", headers=viewer).status_code == 404
    assert client.get("/api/remediations?state=nonsense", headers=viewer).status_code == 400
    kpis = client.get("/api/remediations/kpis", headers=viewer).json()
    assert kpis["by_action"]["run_command"]["success_rate"] == 1.0
    assert client.get("/api/remediations/breakers", headers=viewer).json() == []
    missing = client.post("/api/remediations/reset", json={"target": "worker"}, headers=operator)
    assert missing.status_code == 404


def test_metrics_carry_the_self_healing_kpis(client: TestClient, demo_pitstop: Pitstop, tmp_path: Path) -> None:
    demo_pitstop.incidents.open_or_update("service.down:worker", severity=Severity.WARNING, title="worker down")
    engine = _engine(demo_pitstop, tmp_path / "fixed")
    [rid] = engine.run_pass()
    engine.approve(rid, actor="test")
    demo_pitstop.clock.advance(90)  # type: ignore[attr-defined]
    engine.run_pass()  # the command makes the marker: healed, 90 s after the incident opened
    text = client.get("/metrics").text
    assert 'pitstop_remediation_attempts{by="action",name="run_command"} 1.0' in text
    assert 'pitstop_remediation_success_ratio{by="target",name="worker"} 1.0' in text
    assert 'pitstop_remediation_mttr_seconds{by="action",name="run_command"} 90.0' in text
