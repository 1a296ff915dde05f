"""`pitstop sim run` and `pitstop sim backfill`: the fleet simulator from the command line."""

# No `from __future__ import annotations` here: see pitstop/cli/__init__.py (start time).
import time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pitstop.cli.output import AsJson, emit_json, err, say
from pitstop.cli.times import EXAMPLES, parse_time
from pitstop.errors import ScenarioError

if TYPE_CHECKING:
    from datetime import datetime

    from pitstop.app import Pitstop
    from pitstop.core.clock import Clock
    from pitstop.sim import Simulator
    from pitstop.sim.publish import Publisher

sim_app = typer.Typer(help="The fleet simulator: readings for the inventory's assets.", no_args_is_help=True)


class Target(StrEnum):
    DB = "db"
    MQTT = "mqtt"
    HTTP = "http"


SeedOption = Annotated[int, typer.Option(help="Same seed, same readings.")]
ScenarioOption = Annotated[
    Path | None, typer.Option(help="TOML file of \\[\\[faults]]; relative times count from the start.")
]


def _simulator(
    pitstop: "Pitstop | None", inventory: Path | None, seed: int, scenario: Path | None, origin: "datetime"
) -> "Simulator":
    from pitstop import inventory as inventory_file
    from pitstop.sim import Scenario, Simulator, assets_of_database, assets_of_inventory

    if inventory is not None:
        assets = assets_of_inventory(inventory_file.read_file(inventory))
    else:
        assert pitstop is not None
        assets = assets_of_database(pitstop.assets)
    faults = Scenario.load(scenario, origin) if scenario is not None else Scenario()
    simulator = Simulator(assets, seed=seed, scenario=faults)
    if not simulator.keys:
        raise ScenarioError(
            "nothing to simulate: no asset of type hvac, pump, fan, motor or monitoring-server has sensors"
        )
    return simulator


@sim_app.command("run")
def run_command(
    ctx: typer.Context,
    speed: Annotated[str, typer.Option(help="Simulated time per real time, e.g. 60x.")] = "1x",
    publish: Annotated[Target, typer.Option(help="db, mqtt or http.")] = Target.DB,
    duration: Annotated[str, typer.Option(help="Simulated span: 90s, 15m, 2h, 1d, 1w.")] = "1d",
    seed: SeedOption = 7,
    scenario: ScenarioOption = None,
    start: Annotated[
        str | None,
        typer.Option(
            help=f"Simulated start: ISO 8601 with offset, a date, or relative to now ({EXAMPLES}; a bare "
            "span counts back). Default: now, or now minus the duration above 1x, so that no reading lies in the "
            "future."
        ),
    ] = None,
    inventory: Annotated[
        Path | None, typer.Option(help="Simulate this inventory file instead of the database's (mqtt, http).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="http: pitstop's base URL (default: the configured API).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="PITSTOP_API_KEY", help="http: an operator key.", show_default=False)
    ] = None,
    mqtt_host: Annotated[str | None, typer.Option(help="mqtt: broker host (default: \\[mqtt] or 127.0.0.1).")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="mqtt: broker port (default: \\[mqtt] or 1883).")] = None,
    prefix: Annotated[str | None, typer.Option(help="mqtt: topic prefix (default: \\[mqtt] or pitstop).")] = None,
    as_json: AsJson = False,
) -> None:
    """Publish simulated readings as simulated time passes, `--speed` times faster than real time."""
    from pitstop.core.clock import SystemClock
    from pitstop.sim import parse_duration
    from pitstop.sim.publish import DatabasePublisher, HttpPublisher, MqttPublisher, parse_speed, run

    state = ctx.obj
    factor, span = parse_speed(speed), parse_duration(duration)
    if publish is Target.HTTP and not api_key:
        raise ScenarioError("--publish http needs --api-key (or PITSTOP_API_KEY), an operator key")
    needs_db = publish is Target.DB or inventory is None
    pitstop: Pitstop | None = state.pitstop() if needs_db else None
    clock: Clock = pitstop.clock if pitstop is not None else SystemClock()
    now = clock.now()
    origin = parse_time(start, now=now, option="--start") if start else (now - span if factor > 1 else now)
    simulator = _simulator(pitstop, inventory, seed, scenario, origin)
    settings = state.settings
    target: Publisher
    if publish is Target.DB:
        assert pitstop is not None
        target = DatabasePublisher(simulator, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)
    elif publish is Target.MQTT:
        mqtt = getattr(settings, "mqtt", None)
        target = MqttPublisher(
            simulator,
            host=mqtt_host or str(getattr(mqtt, "host", "127.0.0.1")),
            port=mqtt_port or int(getattr(mqtt, "port", 1883)),
            prefix=prefix or str(getattr(mqtt, "topic_prefix", "pitstop")),
            username=_secret(getattr(mqtt, "username", None)),
            password=_secret(getattr(mqtt, "password", None)),
        )
    else:
        assert api_key is not None
        target = HttpPublisher(url or f"http://{settings.api.host}:{settings.api.port}", api_key)
    err.print(
        f"simulating {len(simulator.keys)} sensors of {len(simulator.assets)} assets from "
        f"{origin.isoformat(timespec='seconds')} for {duration} at {factor:g}x into {publish.value}"
    )
    try:
        summary = run(simulator, target, clock=clock, start=origin, duration=span, speed=factor)
    except KeyboardInterrupt:
        err.print("stopped")
        raise typer.Exit(130) from None
    finally:
        target.close()
    quarantined = target.quarantined if isinstance(target, DatabasePublisher) else 0
    if as_json:
        emit_json({"readings": summary.readings, "end": summary.end, "quarantined": quarantined})
        return
    say(f"{summary.readings} readings published up to {summary.end.isoformat(timespec='seconds')}")
    if quarantined:
        say(
            f"{quarantined} readings quarantined: their sensor and time were already stored with "
            "other values (pitstop quarantine list --reason conflict)"
        )


@sim_app.command("backfill")
def backfill_command(
    ctx: typer.Context,
    days: Annotated[float, typer.Option(min=0.001, max=3650, help="How many days of history, ending now.")] = 30.0,
    seed: SeedOption = 7,
    scenario: ScenarioOption = None,
    as_json: AsJson = False,
) -> None:
    """Write a simulated history into the database, as fast as it goes. Running it twice stores nothing twice."""
    from pitstop.core.types import to_epoch_us
    from pitstop.sim.publish import DatabasePublisher
    from pitstop.storage.repos.rollups import RollupRepo

    pitstop: Pitstop = ctx.obj.pitstop()
    end = pitstop.clock.now()
    start = end - timedelta(days=days)
    simulator = _simulator(pitstop, None, seed, scenario, start)
    publisher = DatabasePublisher(simulator, assets=pitstop.assets, readings=pitstop.readings, ingest=pitstop.ingest)
    began = time.perf_counter()
    taken = sum(publisher.publish(batch) for batch in simulator.chunks(start, end))
    index = pitstop.assets.sensor_index()
    ids = [index[key].id for key in simulator.keys if key in index]
    RollupRepo(pitstop.db).after_import(to_epoch_us(start), to_epoch_us(end), ids, end)  # plots of the past
    seconds = time.perf_counter() - began
    if as_json:
        emit_json({"readings": taken, "sensors": len(simulator.keys), "days": days, "seconds": round(seconds, 3)})
        return
    say(
        f"{taken} readings of {len(simulator.keys)} sensors over {days:g} days in {seconds:.1f} s "
        f"({taken / max(seconds, 1e-9):,.0f} readings/s)"
    )


def _secret(value: object) -> str | None:
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    return str(get() if get else value)
