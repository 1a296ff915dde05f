"""Alerting: incident transitions through the alert service to a channel, rate and latency. Prints JSON.

    python bench/alerts.py [--transitions 6000] [--e2e 3000] [--observations 100000] [--assets 100]
                           [--latency 20] [--gap 0.25] [--databases sqlite,postgresql]
                           [--broker 127.0.0.1:1883]

The product path measured is the one `pitstop serve` runs (`app.py`, `_build_feed`): the incident
registry writes each transition to `incident_events` in the change's own transaction; the incident
feed (`incidents/feed.py`) hands the rows after each subscriber's cursor to the subscribers; the
alert service (`alerts/service.py`, AlertService) turns them into notification decisions
(`alerts/policy.py`: firing / resolved, silences, maintenance windows and inhibition looked up,
labels from the inventory) and gives each run of distinct incidents to the router
(`alerts/router.py`: routes, grouping, retries, one `alert_notifications` row per delivery).
The "null channel" is a notifier defined here that delivers nowhere (counts and returns ok):
what is timed is pitstop's own work.

1. Throughput, SQLite in a temporary directory, --assets assets on 5 sites:
   - `stage`: the alert service alone on --transitions pre-built transitions, in batches of 500
     as the feed hands them (opened / severity raised / resolved, 4 in 5 on assets, the rest
     installation-wide). Still touches the database: the "already sent?" lookup, the silences and
     the open incidents (for inhibition) per batch, the inventory per new incident key, and the
     delivery records per run of distinct incidents. `where` splits the time among those
     (wrappers around the instances' methods).
   - `check_policy`: the alert rules' judgement of check results (`incidents/policy.py`,
     AlertPolicy: for, N-of-M, hysteresis, flapping) over --observations observations of 1,000
     keys, and where a problem starts or ends, the notification policy's decision through the same
     router to the null channel (one dispatch per round). The registry and the feed in between are
     left out (they are in `end_to_end`).
   - `end_to_end`: --e2e transitions written by the registry (open, raise to critical, resolve),
     then one `feed.deliver()` of the feed as `build()` wires it (the alert service, the
     maintenance log and on-call, which starts nothing without policies), the log channel
     replaced by the null one. Reported: registry writes/s, deliver transitions/s, and the time of
     each subscriber (the rest is the feed reading rows and moving cursors).
2. Latency on the real Mosquitto (--broker): the router's channel is pitstop's MQTT notifier
   (a connection per message, QoS 1, waits for the broker's PUBACK) on a topic unique to the run;
   a paho-mqtt subscriber in this process takes the arrival time. Transitions are committed by the
   registry on the main thread at random times (uniform gaps of mean --gap s, so they fall at
   random points of the feed's cycle) for --latency s; the latency of each is from the moment
   the registry's call returned (its transaction committed) to the message's arrival, both on this
   process's monotonic clock.
   - `serve_feed_thread`: the feed is driven by its background thread (FeedDelivery, a
     supervised thread that calls deliver() when the registry wakes it after a commit, and every
     1 s regardless, as in `pitstop serve`; the other threads of serve, the scheduler included,
     are not started). The number includes the thread's wake-up (or, when a commit lands while
     a round runs, the rest of that round), the feed's reads, the subscribers, the router's
     record and the MQTT connect / publish / PUBACK / broker fan-out.
   - `deliver_on_commit`: the same path with deliver() called right after each commit on the
     committing thread: the floor.
   Part 2 runs for each of --databases: SQLite in the temporary directory, and PostgreSQL on
   127.0.0.1:5432 in a scratch database created for the run and dropped afterwards (skipped, and
   said so, when the server is not reachable). --latency s per database: a third with
   deliver-on-commit, two thirds with the feed thread.

No peer is run: Prometheus Alertmanager is not installed on this machine and nothing is
downloaded at run time. Everything shares the machine's 2 cores; the load average is in the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from pitstop import inventory
from pitstop.alerts.base import Alert, Delivery
from pitstop.alerts.policy import NotificationPolicy, Subject
from pitstop.alerts.router import AlertRouter, Route
from pitstop.alerts.service import AlertService
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.clock import SystemClock
from pitstop.core.types import Severity
from pitstop.incidents.feed import FeedDelivery, Transition
from pitstop.incidents.models import IncidentState
from pitstop.incidents.policy import AlertPolicy, AlertRule, Observation
from pitstop.incidents.registry import IncidentRegistry
from pitstop.storage import Database
from pitstop.storage.repos.assets import AssetRepo
from pitstop.testing.services import port_open, scratch_postgres_database

SITES = 5
ASSETS = 100  # --assets
BATCH = 500  # what the feed hands a subscriber at a time (incidents/feed.py)


class NullNotifier:
    """A channel that delivers nowhere: counts the messages and their alerts, always ok."""

    def __init__(self, name: str = "null") -> None:
        self.name = name
        self.messages = 0
        self.alerts = 0

    def send(self, alert: Alert) -> Delivery:
        self.messages += 1
        self.alerts += len(alert.items)
        return Delivery(self.name, True)


@dataclass
class Timer:
    """Time spent inside wrapped calls (wall), and how many calls."""

    seconds: float = 0.0
    calls: int = 0
    samples: list[float] = field(default_factory=list)

    def wrap(self, func: Callable[..., Any], keep: bool = False) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                self.seconds += took
                self.calls += 1
                if keep:
                    self.samples.append(took)

        return timed


def inventory_spec() -> inventory.InventorySpec:
    return inventory.InventorySpec.model_validate(
        {
            "sites": [{"name": f"site-{s}"} for s in range(SITES)],
            "assets": [
                {
                    "name": f"a{i:03d}",
                    "site": f"site-{i % SITES}",
                    "type": "pump",
                    "sensors": [{"name": f"s{j}", "period_s": 10} for j in range(4)],
                }
                for i in range(ASSETS)
            ],
        }
    )


def load_inventory(db: Database) -> None:
    spec = inventory.validated(inventory_spec(), source="bench")
    inventory.apply(db, spec, actor="bench", now=datetime.now(UTC))


def sqlite_db(tmp: Path) -> Database:
    db = Database(f"sqlite:///{tmp / 'pitstop.db'}")
    db.upgrade()
    return db


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if count and seconds > 0 else None


def measure(func: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def key_of(i: int) -> tuple[str, str]:
    """An incident key and its source: 4 in 5 on an asset (`<asset>/<part>`: the asset's site and
    type become labels), the rest installation-wide."""
    if i % 5 == 4:
        return f"backup.failed:job-{i}", "backup"
    return f"asset.anomaly:a{i % ASSETS:03d}/i{i}", "scoring"


# -- 1. throughput ---------------------------------------------------------------------------------


def prebuilt(n: int, start: datetime, first_id: int = 1) -> list[Transition]:
    """Transitions as the feed builds them: per incident opened, raised to critical, resolved."""
    out: list[Transition] = []
    steps = (
        ("opened", None, IncidentState.OPEN, Severity.WARNING, {"severity": "warning"}),
        ("updated", IncidentState.OPEN, IncidentState.OPEN, Severity.CRITICAL, {"severity": "critical"}),
        ("resolved", IncidentState.OPEN, IncidentState.RESOLVED, Severity.CRITICAL, {"reason": "back to normal"}),
    )
    for i in range(n):
        incident, step = divmod(i, 3)
        action, before, after, severity, detail = steps[step]
        key, source = key_of(incident)
        out.append(
            Transition(
                id=first_id + i,
                incident_id=first_id + incident,
                at=start + timedelta(milliseconds=i),
                actor=source,
                action=action,
                from_state=before,
                to_state=after,
                detail=detail,
                key=key,
                severity=severity,
                title=f"bench incident {incident}",
                source=source,
                summary=None,
            )
        )
    return out


def null_router(db: Database) -> tuple[AlertRouter, NullNotifier]:
    null = NullNotifier()
    return AlertRouter(db, {"null": null}, [Route(("null",))]), null


def stage(n: int, tmp: Path) -> dict[str, object]:
    db = sqlite_db(tmp)
    load_inventory(db)
    clock = SystemClock()
    assets = AssetRepo(db)
    rule = AlertRule()
    service = AlertService(
        Settings(data_dir=tmp),
        db=db,
        clock=clock,
        assets=assets,
        incidents=IncidentRegistry(db, clock),
        rule_for=lambda key: rule,
    )
    null = NullNotifier("log")
    service.router.notifiers["log"] = null  # the default route's channel, delivering nowhere
    router = service.router
    service(prebuilt(30, clock.now() - timedelta(days=1), first_id=10**6))  # warm up
    warm = null.messages
    db_conn = {name: Timer() for name in ("already_sent", "silences", "open_incidents", "inventory", "delivery_record")}
    router.sent_for = db_conn["already_sent"].wrap(router.sent_for)  # type: ignore[method-assign]
    service.mutes.mutes = db_conn["silences"].wrap(service.mutes.mutes)  # type: ignore[method-assign]
    service._active = db_conn["open_incidents"].wrap(service._active)  # type: ignore[method-assign]
    assets.get_asset = db_conn["inventory"].wrap(assets.get_asset)  # type: ignore[method-assign]
    router._save = db_conn["delivery_record"].wrap(router._save)  # type: ignore[method-assign]
    transitions = prebuilt(n, clock.now())
    batches = [transitions[i : i + BATCH] for i in range(0, n, BATCH)]

    def run() -> None:
        for batch in batches:
            service(batch)

    wall, cpu = measure(run)
    sent = null.messages - warm
    db.dispose()
    where = {k: round(v.seconds, 3) for k, v in db_conn.items()}
    where["rest"] = round(wall - sum(v.seconds for v in db_conn.values()), 3)
    return {
        "transitions": n,
        "messages_to_null_channel": sent,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "transitions_per_s": rate(n, wall),
        "transitions_per_cpu_s": rate(n, cpu),  # what the wall rate would be on an idle core
        "where_s": where,
    }


def check_policy(observations: int, tmp: Path, keys: int = 1000) -> dict[str, object]:
    db = sqlite_db(tmp)
    router, null = null_router(db)
    rng = random.Random(7)
    start = datetime(2026, 1, 4, tzinfo=UTC)
    rounds = max(1, observations // keys)
    labels = [{"site": f"site-{k % SITES}", "asset": f"a{k % ASSETS:03d}", "scope": "asset"} for k in range(keys)]
    level = [rng.uniform(20, 60) for _ in range(keys)]
    batches = []
    for r in range(rounds):
        at = start + timedelta(minutes=r)
        batch = []
        for k in range(keys):
            level[k] = min(100.0, max(0.0, level[k] + rng.gauss(0, 12 if k % 5 == 0 else 3)))
            v = level[k]
            batch.append(Observation(f"cpu.high:h{k}", at, v >= 70, v < 65, Severity.WARNING, f"{v:.0f}%"))
        batches.append((at, batch))
    rule = AlertRule(for_s=120, clear_for_s=60, min_interval_s=300)
    judge, tell = AlertPolicy(rule), NotificationPolicy(lambda key: rule)
    decided = 0
    route_timer = Timer()
    dispatch = route_timer.wrap(router.dispatch)

    def run() -> None:
        nonlocal decided
        for at, batch in batches:
            subjects = [
                Subject(s.key, s.problem, s.severity, labels[int(s.key[10:])], s.summary)
                for s in judge.evaluate_round(batch)
                if s.started or s.ended
            ]
            decisions = tell.decide(subjects, at)
            decided += len(decisions)
            if decisions:
                dispatch(decisions, at)

    wall, cpu = measure(run)
    db.dispose()
    return {
        "observations": rounds * keys,
        "keys": keys,
        "decisions": decided,
        "messages_to_null_channel": null.messages,  # grouped by site: a message holds several alerts
        "alerts_in_those_messages": null.alerts,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "observations_per_s": rate(rounds * keys, wall),
        "observations_per_cpu_s": rate(rounds * keys, cpu),
        "routing_s": round(route_timer.seconds, 3),
        "decisions_routed_per_s": rate(decided, route_timer.seconds),
    }


def write_transitions(pitstop: Pitstop, n: int, first: int = 0) -> int:
    """Registry calls making n transitions: open, raise to critical, resolve (per incident)."""
    done = 0
    for i in range(first, first + (n + 2) // 3):
        key, source = key_of(i)
        title = f"bench incident {i}"
        for step in range(3):
            if done == n:
                return done
            if step == 0:
                pitstop.incidents.open_or_update(key, severity=Severity.WARNING, title=title, source=source)
            elif step == 1:
                pitstop.incidents.open_or_update(key, severity=Severity.CRITICAL, title=title, source=source)
            else:
                pitstop.incidents.resolve(key, reason="back to normal", actor=source)
            done += 1
    return done


def end_to_end(n: int, tmp: Path) -> dict[str, object]:
    db = sqlite_db(tmp)
    pitstop = build(Settings(data_dir=tmp, health={"default_checks": False}), db=db)
    load_inventory(db)
    null = NullNotifier("log")
    pitstop.alerts.router.notifiers["log"] = null  # the default route's channel, delivering nowhere
    write_transitions(pitstop, 30, first=10**6)  # warm up
    pitstop.feed.deliver()
    warm = null.messages
    timers = {name: Timer() for name in pitstop.feed.subscribers}
    for name, handler in list(pitstop.feed.subscribers.items()):
        pitstop.feed.subscribers[name] = timers[name].wrap(handler)
    wall_w, _ = measure(lambda: write_transitions(pitstop, n))
    handed: list[int] = []
    wall_d, cpu_d = measure(lambda: handed.append(pitstop.feed.deliver()))
    pitstop.close()
    subs = {name: round(t.seconds, 3) for name, t in timers.items()}
    return {
        "transitions": n,
        "subscribers": list(subs),
        "handed_over": handed[0],
        "messages_to_null_channel": null.messages - warm,
        "registry_write_s": round(wall_w, 3),
        "registry_writes_per_s": rate(n, wall_w),
        "deliver_wall_s": round(wall_d, 3),
        "deliver_cpu_s": round(cpu_d, 3),
        "deliver_transitions_per_s": rate(n, wall_d),
        "deliver_transitions_per_cpu_s": rate(n, cpu_d),
        "write_and_deliver_transitions_per_s": rate(n, wall_w + wall_d),
        "deliver_by_subscriber_s": subs | {"feed_reads_and_cursors": round(wall_d - sum(subs.values()), 3)},
    }


# -- 2. latency on the real broker -------------------------------------------------------------------


class Arrivals:
    """A paho-mqtt subscriber on the run's topics: the arrival time of each (key, event)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.at: dict[tuple[str, str], float] = {}
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-alerts-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, code, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.ready.set()
        self.client.on_message = self._message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError(f"could not subscribe on the broker {host}:{port}")

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.perf_counter()
        body = json.loads(msg.payload)
        with self.cond:
            for item in body["alerts"]:
                self.at.setdefault((item["key"], item["event"]), now)
            self.cond.notify_all()

    def wait_for(self, wanted: set[tuple[str, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not wanted <= self.at.keys() and time.monotonic() < deadline:
                self.cond.wait(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def summary(latencies: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "mean_ms": round(float(ms.mean()), 1),
    }


def latency_run(url: str | None, broker: tuple[str, int], seconds: float, gap: float, tmp: Path) -> dict[str, object]:
    run = uuid.uuid4().hex[:10]
    topic = f"pitstop-bench/{run}/{{severity}}"
    channel = {"type": "mqtt", "host": broker[0], "port": broker[1], "topic": topic, "qos": 1}
    settings = Settings(
        data_dir=tmp,
        health={"default_checks": False, "alerts": {"channels": {"mqtt": channel}, "routes": [{"channels": ["mqtt"]}]}},
    )
    db = Database(url) if url else Database(f"sqlite:///{tmp / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(settings, db=db)
    load_inventory(db)
    arrivals = Arrivals(broker[0], broker[1], f"pitstop-bench/{run}/#")
    rng = random.Random(11)
    out: dict[str, object] = {"database": db.dialect, "topic": f"pitstop-bench/{run}/<severity>"}
    try:
        counter = iter(range(10**9))
        # warm up: a connection to the broker, the feed's first reads
        warm = commit_some(pitstop, counter, 2, 0.0, rng)
        pitstop.feed.deliver()
        arrivals.wait_for(set(warm), 10)

        # (a) deliver() right after each commit: no polling
        lat = []
        end = time.perf_counter() + seconds / 3
        while time.perf_counter() < end:
            committed = commit_some(pitstop, counter, 1, 0.0, rng)
            pitstop.feed.deliver()
            arrivals.wait_for(set(committed), 10)
            lat += [arrivals.at[k] - t for k, t in committed.items() if k in arrivals.at]
        out["deliver_on_commit"] = {"messages": len(lat), **summary(lat)}

        # (b) the background feed thread as `pitstop serve` runs it
        part = next(p for p in pitstop.background if isinstance(p, FeedDelivery))
        rounds = Timer()
        pitstop.feed.deliver = rounds.wrap(pitstop.feed.deliver, keep=True)  # type: ignore[method-assign]
        part.start()
        committed = {}
        end = time.perf_counter() + seconds * 2 / 3
        while time.perf_counter() < end:
            committed |= commit_some(pitstop, counter, 1, gap, rng)
        arrivals.wait_for(set(committed), 15)
        part.stop()
        lat = [arrivals.at[k] - t for k, t in committed.items() if k in arrivals.at]
        out["serve_feed_thread"] = {
            "poll_every_s": part.every_s,
            "transitions": len(committed),
            "messages": len(lat),
            "lost": len(committed) - len(lat),
            **summary(lat),
            "delivery_rounds": rounds.calls,
            "delivery_round_p50_ms": round(statistics.median(rounds.samples) * 1000, 1),
            "delivery_round_max_ms": round(max(rounds.samples) * 1000, 1),
        }
        failed = [r for r in pitstop.alerts.router.recent(1000) if r.outcome != "sent"]
        out["failed_deliveries"] = len(failed)
    finally:
        arrivals.close()
        pitstop.close()
    return out


def commit_some(
    pitstop: Pitstop, counter: Iterator[int], n: int, gap: float, rng: random.Random
) -> dict[tuple[str, str], float]:
    """n transitions (each a new incident, or the resolution of the last one opened), each after a
    random pause; returns (key, event) -> the time its registry call returned (committed)."""
    out: dict[tuple[str, str], float] = {}
    for _ in range(n):
        if gap:
            time.sleep(rng.uniform(0, 2 * gap))
        i = next(counter)
        pair, second = divmod(i, 2)
        key = f"asset.anomaly:a{pair % ASSETS:03d}/latency-{pair}"
        if second:
            pitstop.incidents.resolve(key, reason="back to normal", actor="scoring")
            out[(key, "resolved")] = time.perf_counter()
        else:
            pitstop.incidents.open_or_update(key, severity=Severity.WARNING, title=f"latency {pair}", source="scoring")
            out[(key, "firing")] = time.perf_counter()
    return out


def main() -> None:
    global ASSETS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=6000, help="pre-built transitions through the subscriber")
    parser.add_argument("--e2e", type=int, default=3000, help="transitions written, then delivered by the feed")
    parser.add_argument("--observations", type=int, default=100_000, help="through the alert policy (1,000 keys)")
    parser.add_argument("--assets", type=int, default=ASSETS, help="inventory size (labels are looked up in it)")
    parser.add_argument("--latency", type=float, default=20.0, help="seconds of the latency run, per database")
    parser.add_argument("--gap", type=float, default=0.25, help="mean seconds between transitions (latency)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="for the latency run")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker host:port")
    args = parser.parse_args()
    ASSETS = args.assets
    logging.getLogger("pitstop").setLevel(logging.ERROR)
    host, _, port = args.broker.rpartition(":")
    broker = (host, int(port))
    started = time.perf_counter()
    result: dict[str, object] = {
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "sizes": vars(args),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("stage", "check", "e2e", "lat-sqlite", "lat-pg"):
            (root / name).mkdir()
        result["throughput"] = {
            "stage": stage(args.transitions, root / "stage"),
            "check_policy": check_policy(args.observations, root / "check"),
            "end_to_end": end_to_end(args.e2e, root / "e2e"),
        }
        result["loadavg_after_throughput"] = [round(x, 2) for x in os.getloadavg()]
        latency: dict[str, object] = {}
        wanted = args.databases.split(",")
        if "sqlite" in wanted:
            latency["sqlite"] = latency_run(None, broker, args.latency, args.gap, root / "lat-sqlite")
        if "postgresql" in wanted:
            if port_open("127.0.0.1", 5432):
                with scratch_postgres_database() as url:
                    latency["postgresql"] = latency_run(url, broker, args.latency, args.gap, root / "lat-pg")
            else:
                latency["postgresql"] = {"skipped": "PostgreSQL is not reachable at 127.0.0.1:5432"}
        result["latency"] = latency
    result["peer"] = "none: Prometheus Alertmanager is not installed here (nothing is downloaded at run time)"
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
