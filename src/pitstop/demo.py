"""The demo installation: a small site loaded into the embedded database."""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.core.types import Role


def settings_file(data_dir: Path) -> Path:
    """The demo's settings file in its data folder, written from the shipped one on first start
    (with the data folder in it, so `pitstop -c <file> ...` finds the demo's database); a file the
    user edited is kept."""
    path = data_dir / "pitstop.toml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        shipped = (files("pitstop") / "data" / "demo-pitstop.toml").read_text(encoding="utf-8")
        folder = json.dumps(str(data_dir.resolve()))  # a TOML basic string is a JSON string
        shipped = shipped.replace("{data_dir}", folder[1:-1])
        path.write_text(f"data_dir = {folder}\n\n{shipped}", encoding="utf-8")
    return path


KEYS_FILE = "demo-keys.json"  # in the data folder, mode 0600: the demo's keys, the same on every start
DEMO_ROLES = {"demo-viewer": Role.VIEWER, "demo-operator": Role.OPERATOR}


def prepare(pitstop: Pitstop) -> tuple[str, str]:
    """Upgrade the schema, load the demo inventory, and return a viewer and an operator key.

    The keys are kept in <data_dir>/demo-keys.json (readable by the user alone) and printed again on
    every start, so a browser logged in with one stays logged in after a restart. A key that no longer
    works (revoked, or the database replaced) is replaced by a new one, and older demo keys are revoked
    so that they do not pile up."""
    pitstop.db.upgrade()
    text = (files("pitstop") / "data" / "demo-inventory.toml").read_text(encoding="utf-8")
    spec = inventory.parse(text, "demo-inventory.toml", "toml")
    inventory.apply(pitstop.db, spec, actor="demo", now=pitstop.clock.now())
    now = pitstop.clock.now()
    path = pitstop.settings.data_dir / KEYS_FILE
    stored = _read_keys(path)
    tokens: dict[str, str] = {}
    for name, role in DEMO_ROLES.items():
        token = stored.get(name)
        key = pitstop.keys.authenticate(token) if token else None
        if key is None or key.name != name or key.role is not role:
            _, token = pitstop.keys.create(name, role, now)
            key = pitstop.keys.authenticate(token)
        assert token is not None and key is not None
        tokens[name] = token
        for other in pitstop.keys.list():  # earlier demo keys of this role: revoked, not piling up
            if other.name == name and other.revoked_at is None and other.prefix != key.prefix:
                pitstop.keys.revoke(other.prefix, now)
    if tokens != stored:
        _write_keys(path, tokens)
    return tokens["demo-viewer"], tokens["demo-operator"]


def _read_keys(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or damaged: new keys are made and the file written again
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in DEMO_ROLES and isinstance(v, str)}


def _write_keys(path: Path, tokens: dict[str, str]) -> None:
    """Write the keys readable and writable by the user alone (0600), also when the file existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(tokens, f, indent=2)
        f.write("\n")


def simulate(pitstop: Pitstop) -> int:
    """Run the fleet simulator into the database: a few days of history on first start (or the gap
    since the last run), then new readings every few seconds; then one prognostics pass over that
    history, so the asset pages show a remaining-life estimate from the start. Returns how many
    readings were added."""
    from pitstop.sim.live import attach

    _, stored = attach(
        clock=pitstop.clock,
        data_dir=pitstop.settings.data_dir,
        assets=pitstop.assets,
        readings=pitstop.readings,
        ingest=pitstop.ingest,
        scheduler=pitstop.scheduler,
    )
    pitstop.prognostics.run()
    return stored


DEMO_MODEL = "hvac-twin"


def train_models(pitstop: Pitstop, *, trees: int = 40) -> list[str]:
    """Two versions of the HVAC twin on the simulated history, through the model lifecycle: v1 on the
    first half (managed, so it becomes the champion) and v2 on all of it (manual, so it stays the
    challenger with its gate decision). The Models page then has something to compare, promote and
    roll back. Nothing happens when the model already has versions or there is too little history.
    Returns what was done, one line each."""
    from pitstop.config.lifecycle import PrerequisiteSettings
    from pitstop.ml.registry import Mode
    from pitstop.ml.registry.lifecycle import PrerequisitesFailed

    if pitstop.models.registry.versions(DEMO_MODEL):
        return []
    frame = pitstop.model_data.frame(DEMO_MODEL)
    if len(frame) < 400:
        return []
    excluded = pitstop.model_data.faulty_periods(DEMO_MODEL)
    # The guide asks for 10,000 samples before a model is trained (the default of `min_samples`);
    # the demo's few days of two units are fewer (3 days of minute readings: 8,640 rows, v1 half of
    # them), so the demo's model sets a lower minimum here, on purpose. The data-quality limits
    # (missing, flat, out-of-range inputs) stay the defaults.
    prerequisites = PrerequisiteSettings(min_samples=200)
    done = []
    for part, mode in ((frame.iloc[: len(frame) // 2], Mode.MANAGED), (frame, Mode.MANUAL)):
        try:
            result = pitstop.models.retrain(
                DEMO_MODEL,
                part,
                mode=mode,
                trigger="demo",
                actor="demo",
                excluded=excluded,
                params={"n_estimators": trees},
                prerequisites=prerequisites,
                ranges=pitstop.model_data.ranges(DEMO_MODEL),
            )
        except PrerequisitesFailed as exc:
            done.append(str(exc))
            break
        role = "champion" if result.promoted else "challenger"
        done.append(f"{DEMO_MODEL} v{result.version.version} ({role}, {len(part)} rows)")
    return done
