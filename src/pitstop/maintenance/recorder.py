"""The maintenance log's subscription to what other components report: backup work, model
training decisions, champion moves, re-taken drift references and asset events (equipment
changed). Each is one entry, worded here and nowhere else; the entry's ref names the record it came
from (`backup-run:<id>`, `model-decision:<id>`, `model:<name>`, `model-reference:<id>`,
`asset-event:<id>`), so an entry leads back to its evidence. Incidents reach the log through the incident feed
(`MaintenanceLog.record_transitions`); work orders, procedure runs, schedules and the knowledge base
write their entries in the same transaction as their change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pitstop.maintenance.log import MaintenanceLog

if TYPE_CHECKING:
    from pitstop.backup.records import BackupRun
    from pitstop.ml.registry.events import AssetEvent
    from pitstop.ml.registry.store import AliasMove


class LogRecorder:
    def __init__(self, log: MaintenanceLog) -> None:
        self.log = log

    def backup_run(self, run: BackupRun) -> None:
        """Every backup, verify, drill, restore and prune."""
        what = f"backup {run.kind} {run.outcome}" + (f" (set {run.set_id})" if run.set_id else "")
        self.log.append(
            "backup",
            what,
            actor="backup",
            issues=str(run.detail.get("error", "")),
            result=run.outcome,
            ref=f"backup-run:{run.id}",
        )

    def model_move(self, move: AliasMove) -> None:
        """A model's champion moving: a promotion or a rollback."""
        if move.alias != "champion":
            return
        was = f"v{move.from_version}" if move.from_version is not None else "none"
        now = f"v{move.to_version}" if move.to_version is not None else "none"
        self.log.append(
            "model_promotion",
            f"model {move.name}: champion {was} -> {now}",
            actor=move.actor,
            actions=move.reason,
            result="rolled back" if move.reason.startswith("rollback") else "promoted",
            ref=f"model:{move.name}",
        )

    def model_decision(self, name: str, decision_id: int, record: dict[str, Any]) -> None:
        """A trained candidate and its gates' decision."""
        champion = f"v{record['champion']}" if record.get("champion") is not None else "none"
        failed = ", ".join(record.get("failed_rules") or [])
        if record.get("candidate") is None:  # a prerequisite failed: nothing was trained
            what = f"nothing trained ({record.get('trigger', '?')}), prerequisites failed; champion {champion} stays"
        else:
            what = (
                f"v{record['candidate']} trained ({record.get('trigger', '?')}), "
                f"gates {'passed' if record['passed'] else 'failed'} against champion {champion}"
            )
        self.log.append(
            "model_training",
            f"model {name}: {what}",
            actor="models",
            issues=f"failed: {failed}" if failed else "",
            result="passed" if record["passed"] else "failed",
            ref=f"model-decision:{decision_id}",
        )

    def model_rebaseline(self, row: dict[str, Any]) -> None:
        """A model version's drift reference re-taken from a window (the old one is kept)."""
        self.log.append(
            "note",
            f"model {row['name']} v{row['version']}: drift reference re-taken from {row['window_start']} .. "
            f"{row['window_end']} ({row['rows']:,} rows)"[:500],
            actor=row["actor"],
            actions=row["reason"],
            result="rebaselined",
            ref=f"model-reference:{row['id']}",
        )

    def asset_event(self, event: AssetEvent) -> None:
        """Something done to an asset that its models must learn again (equipment changed)."""
        self.log.append(
            "note",
            f"{event.asset}: {event.kind.replace('_', ' ')}: {event.note}"[:500],
            actor=event.actor,
            asset=event.asset,
            actions=event.note,
            ref=f"asset-event:{event.id}",
        )
