"""`pitstop` command line. Each command parses, builds a Pitstop, calls one service, prints.

Only typer, rich and light modules are imported here and in the sub-apps: `pitstop --help` does
not load pandas, SQLAlchemy or the models (tests/meta/test_cli_imports.py keeps it so).
"""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitstop.cli.backup import backup_app
from pitstop.cli.heal import heal_app
from pitstop.cli.health import check_command, incidents_app, silence_app, windows_app
from pitstop.cli.ingest import ingest_command, quarantine_app
from pitstop.cli.maintenance import register as register_maintenance
from pitstop.cli.models import asset_event_command, drift_app, models_app, score_command
from pitstop.cli.oncall import oncall_app
from pitstop.cli.output import AsJson, emit_json, err, out, say, table
from pitstop.cli.rul import rul_app
from pitstop.cli.sim import sim_app
from pitstop.core.types import Role
from pitstop.errors import PitstopError

if TYPE_CHECKING:  # building pitstop imports every component: only commands that need it pay for it
    from datetime import datetime

    from pitstop.app import Pitstop
    from pitstop.config import Settings

app = typer.Typer(
    name="pitstop",
    help="Predictive maintenance and self-healing operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema: upgrade and status; readings partitions.", no_args_is_help=True)
assets_app = typer.Typer(help="Sites, assets and sensors.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(assets_app, name="assets")
app.add_typer(keys_app, name="keys")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(backup_app, name="backup")
app.command("ingest")(ingest_command)
app.command("check")(check_command)
app.add_typer(incidents_app, name="incidents")
app.add_typer(silence_app, name="silence")
app.add_typer(windows_app, name="windows")
app.add_typer(oncall_app, name="oncall")
app.add_typer(heal_app, name="heal")
register_maintenance(app)
app.add_typer(sim_app, name="sim")
app.add_typer(models_app, name="models")
app.add_typer(drift_app, name="drift")
app.add_typer(rul_app, name="rul")
app.command("score")(score_command)
assets_app.command("event")(asset_event_command)


class State:
    """Global flags, turned into Settings on first use."""

    def __init__(self, config: Path | None, overrides: dict[str, Any]) -> None:
        self.config = config
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> "Settings":
        if self._settings is None:
            from pitstop.config import load_settings

            self._settings = load_settings(self.config, self.overrides)
        return self._settings

    def reset(self) -> None:
        """Read the settings again on next use (the config file changed)."""
        self._settings = None

    def pitstop(self, *, check_schema: bool = True) -> "Pitstop":
        from pitstop.app import build

        pitstop = build(self.settings)
        if check_schema:
            pitstop.db.ensure_current()
        return pitstop


def _state(ctx: typer.Context) -> State:
    state: State = ctx.obj
    return state


def _version(value: bool) -> None:
    if value:
        from pitstop import __version__

        out.print(f"pitstop {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (default ./pitstop.toml if present).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the embedded database and files live.")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL, e.g. postgresql://user@host/db (default: SQLite).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database"] = {"url": database_url}
    if log_level is not None:
        overrides["log"] = {"level": log_level.upper()}
    ctx.obj = State(config, overrides)


# -- config ------------------------------------------------------------------------------------


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Print the effective settings (defaults < pitstop.toml < env < flags), secrets masked."""
    from pitstop.config import masked

    values = masked(_state(ctx).settings)
    if as_json:
        emit_json(values)
        return
    table(("setting", "value"), _flatten(values), empty="no settings")


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


# -- db ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Apply all pending migrations."""
    pitstop = _state(ctx).pitstop(check_schema=False)
    before = pitstop.db.current_revisions()
    pitstop.db.upgrade()
    after = pitstop.db.current_revisions()
    if as_json:
        emit_json({"database": pitstop.db.display_url, "before": sorted(before), "after": sorted(after)})
    elif before == after:
        say(f"database {pitstop.db.display_url} is already current ({', '.join(sorted(after))})")
    else:
        was = ", ".join(sorted(before)) or "empty"
        say(f"upgraded {pitstop.db.display_url}: {was} -> {', '.join(sorted(after))}")


@db_app.command("status")
def db_status(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Say whether the schema is current. Exit 1 when it is behind."""
    pitstop = _state(ctx).pitstop(check_schema=False)
    current, head = pitstop.db.current_revisions(), pitstop.db.head_revisions()
    if as_json:
        emit_json(
            {
                "database": pitstop.db.display_url,
                "current": sorted(current),
                "head": sorted(head),
                "up_to_date": current == head,
            }
        )
    else:
        say(f"database: {pitstop.db.display_url}")
        say(f"schema:   {', '.join(sorted(current)) or 'empty'} (this pitstop: {', '.join(sorted(head))})")
    if current != head:
        err.print("the schema is behind: run `pitstop db upgrade`")
        raise typer.Exit(1)


@db_app.command("partitions")
def db_partitions(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List the readings' monthly partitions on PostgreSQL: range, estimated rows, size."""
    pitstop = _state(ctx).pitstop(check_schema=False)
    from pitstop.storage.partitions import ReadingPartitions

    db = pitstop.db
    partitions = ReadingPartitions(db)
    try:
        partitioned = partitions.partitioned()
        found = partitions.list_all()
    finally:
        pitstop.close()
    if as_json:
        emit_json(
            {
                "database": db.display_url,
                "dialect": db.dialect,
                "partitioned": partitioned,
                "partitions": [p.as_dict() for p in found],
            }
        )
        return
    if db.dialect == "sqlite":
        say(f"{db.display_url}: SQLite keeps the readings in one table, without partitions")
        return
    if not partitioned:
        say(f"{db.display_url}: readings is not partitioned here: run `pitstop db upgrade`")
        return
    rows = [
        (p.name, "DEFAULT" if p.default else _day(p.start), _day(p.end), p.rows_estimate, _size(p.bytes)) for p in found
    ]
    # from/to in UTC, `to` excluded; rows: the planner's estimate, as of the last ANALYZE
    table(("partition", "from (UTC)", "to", "rows (est.)", "size"), rows, empty="no partitions")


def _day(t: "datetime | None") -> str | None:
    """A month partition's bound: midnight UTC, so the date says it all."""
    return None if t is None else t.date().isoformat() if t.time() == t.min.time() else t.isoformat()


def _size(n: int) -> str:
    """Bytes for a person: 8.2 MB (powers of 1024, as PostgreSQL's pg_size_pretty)."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# -- assets ------------------------------------------------------------------------------------


@assets_app.command("load")
def assets_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Inventory file (.toml or .yaml).")],
    as_json: AsJson = False,
) -> None:
    """Create or update sites, assets and sensors from an inventory file. Idempotent, all or nothing."""
    pitstop = _state(ctx).pitstop()
    from pitstop import inventory

    spec = inventory.read_file(file)
    summary = inventory.apply(pitstop.db, spec, actor="cli", now=pitstop.clock.now())
    if as_json:
        emit_json(
            {
                "file": str(file),
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "changes": [str(c) for c in summary.changes],
            }
        )
        return
    for change in summary.changes:
        say(f"  {change}")
    say(f"{file}: {summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged")


@assets_app.command("list")
def assets_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    as_json: AsJson = False,
) -> None:
    """List assets with their sensors."""
    pitstop = _state(ctx).pitstop()
    rows = pitstop.assets.list_assets(site)
    sensors: dict[str, list[str]] = {}
    for s in pitstop.assets.sensors():
        sensors.setdefault(s.asset, []).append(s.name)
    if as_json:
        emit_json([{**_asset_dict(a), "sensors": sensors.get(a.name, [])} for a in rows])
        return
    table(
        ("site", "asset", "parent", "type", "crit.", "location", "sensors"),
        ((a.site, a.name, a.parent, a.type, a.criticality, a.location, len(sensors.get(a.name, []))) for a in rows),
        empty=f"no assets{f' at site {site}' if site else ''}: load an inventory with `pitstop assets load FILE`",
    )


def _asset_dict(a: Any) -> dict[str, Any]:
    return {k: getattr(a, k) for k in ("name", "site", "parent", "type", "criticality", "location")}


# -- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="viewer sees, operator acts, admin configures.")] = Role.VIEWER,
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "cli",
    as_json: AsJson = False,
) -> None:
    """Create an API key. The key is printed once (alone on stdout); only its hash is stored."""
    pitstop = _state(ctx).pitstop()
    key, token = pitstop.keys.create(name, role, pitstop.clock.now())
    if as_json:
        emit_json({**_key_dict(key), "token": token})
        return
    err.print(f"created {key.role.value} key {key.prefix} for {key.name!r}; store it now, it is not shown again:")
    out.print(token, soft_wrap=True, highlight=False, markup=False)


def _key_dict(k: Any) -> dict[str, Any]:
    return {"prefix": k.prefix, "name": k.name, "role": k.role, "created_at": k.created_at, "revoked_at": k.revoked_at}


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List API keys (never their secrets)."""
    keys = _state(ctx).pitstop().keys.list()
    if as_json:
        emit_json([_key_dict(k) for k in keys])
        return
    table(
        ("prefix", "name", "role", "created", "revoked"),
        ((k.prefix, k.name, k.role, k.created_at, k.revoked_at) for k in keys),
        empty="no API keys: create one with `pitstop keys create`",
    )


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, prefix: str, as_json: AsJson = False) -> None:
    """Revoke a key by its prefix."""
    pitstop = _state(ctx).pitstop()
    if not pitstop.keys.revoke(prefix, pitstop.clock.now()):
        err.print(f"no active key with prefix {prefix!r}", highlight=False, markup=False)
        raise typer.Exit(1)
    if as_json:
        emit_json({"prefix": prefix, "revoked": True})
        return
    say(f"revoked {prefix}")


# -- serve and demo ----------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            help="What this process runs: api, ingest, worker, scheduler (repeat or comma-separate; default all). "
            "Without api it serves /health, /ready and /metrics only; worker needs [fleet].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the service: API, scheduler and the configured sources, in one process (or some of them: --role)."""
    from pitstop.background import ROLES

    _tune_malloc()  # first: arenas made before it stay (imports and the demo's training start threads)
    state = _state(ctx)
    roles = {r.strip() for value in role or [",".join(ROLES)] for r in value.split(",") if r.strip()}
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise typer.BadParameter(f"unknown role {', '.join(unknown)!s}; roles: {', '.join(ROLES)}", param_hint="--role")
    if "worker" in roles and role and state.settings.fleet is None:
        raise typer.BadParameter("the worker role runs the per-asset jobs of [fleet], not set", param_hint="--role")
    if host is not None or port is not None:
        api = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        state.overrides = {**state.overrides, "api": {**state.overrides.get("api", {}), **api}}
    pitstop = state.pitstop(check_schema=state.settings.database.check_schema_at_start)
    _serve(pitstop, roles)  # runs until stopped: it prints logs, not data (no --json)


def _serve(pitstop: "Pitstop", roles: set[str] | None = None) -> None:
    import logging

    import uvicorn

    from pitstop.api import create_app
    from pitstop.background import ROLES

    settings = pitstop.settings
    logging.basicConfig(level=settings.log.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # <data_dir>/pitstop.pid names the serving process (the process and process_memory checks,
    # scripts). It stays after a stop (uvicorn ends the process by re-raising the signal): the
    # checks read a pid that runs no more as "not running".
    pid_file = settings.data_dir / "pitstop.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    uvicorn.run(
        create_app(pitstop, run_background=True, roles=roles or ROLES),
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log.level.lower(),
        access_log=False,
    )


# glibc's mallopt parameters (malloc.h) and what the server sets them to.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
_SERVER_MALLOC = {_M_ARENA_MAX: ("MALLOC_ARENA_MAX", 2), _M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", 128 * 1024)}


def _tune_malloc() -> None:
    """glibc's malloc for a long-running threaded server (issue 20, bench/web.py). Two arenas, not
    8 per core: each keeps what its threads freed (the web's pool, the jobs). A fixed mmap threshold
    (glibc's starting 128 KiB): after a large block (query rows, a frame) is freed glibc raises it,
    and later large blocks stay in the heap when freed. Values in the environment win (also glibc's
    tunables, GLIBC_TUNABLES); not glibc: nothing to do."""
    import ctypes

    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for param, (variable, value) in _SERVER_MALLOC.items():
        if variable not in os.environ:
            mallopt(param, value)


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Where the demo keeps its data.")] = None,
) -> None:
    """Start pitstop with a small demo site on SQLite, and print the URL and its keys (the same keys
    on every start, kept in <data dir>/demo-keys.json)."""
    from pitstop.config.loader import DEFAULT_FILE
    from pitstop.demo import KEYS_FILE, prepare, settings_file, simulate, train_models

    _tune_malloc()  # first: arenas made before it stay (the models' training starts threads)
    state = _state(ctx)
    overrides = {**state.overrides, "api": {"port": port}}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    state.overrides = overrides
    if state.config is None and not DEFAULT_FILE.exists() and "PITSTOP_CONFIG" not in os.environ:
        # the demo's own settings (its checks), kept in its data folder for the user to edit
        state.config = settings_file(state.settings.data_dir)
        state.reset()
    pitstop = state.pitstop(check_schema=False)
    viewer, operator = prepare(pitstop)
    added = simulate(pitstop)
    trained = train_models(pitstop)
    url = f"http://{pitstop.settings.api.host}:{pitstop.settings.api.port}"
    out.print(f"pitstop demo on [bold]{url}[/bold]  (data in {pitstop.settings.data_dir})")
    if state.config is not None:
        out.print(f"  settings:     {state.config}  (`pitstop -c {state.config} check` runs its checks)")
    out.print(f"  API docs:     {url}/docs")
    out.print(f"  dashboard:    {url}/ui/  (log in with a key below)")
    out.print(f"  viewer key:   {viewer}")
    out.print(f"  operator key: {operator}")
    out.print(f"  keys kept in: {pitstop.settings.data_dir / KEYS_FILE}  (the same keys on every start)")
    out.print(f"  simulator:    {added} readings of history added; new ones every 10 s (`pitstop sim --help`)")
    for line in trained:
        out.print(f"  model:        {line}")
    _serve(pitstop)


def main() -> None:
    try:
        app()
    except PitstopError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
