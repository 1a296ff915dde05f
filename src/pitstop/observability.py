"""pitstop's own Prometheus metrics, on a registry per Pitstop (never the global one).

These count what happens in this process. The guides' KPI table (check status, incidents, model
drift, backups, ingest lag) is read from the records at scrape time: `pitstop.observability_kpis`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "pitstop_http_requests", "HTTP requests served", ["method", "route", "status"], registry=registry
        )
        self.http_latency = Histogram(
            "pitstop_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.readings_stored = Counter(
            "pitstop_readings_stored", "Readings stored, by source", ["source"], registry=registry
        )
        # -- ingest --
        self.readings_duplicate = Counter(
            "pitstop_readings_duplicate", "Readings that were already stored, by source", ["source"], registry=registry
        )
        self.readings_quarantined = Counter(
            "pitstop_readings_quarantined",
            "Readings quarantined, by source and reason",
            ["source", "reason"],
            registry=registry,
        )
        self.readings_spooled = Counter(
            "pitstop_readings_spooled", "Readings written to the spool while the database was down", registry=registry
        )
        self.spool_bytes = Gauge("pitstop_ingest_spool_bytes", "Bytes waiting in the spool", registry=registry)
        self.mqtt_connected = Gauge("pitstop_mqtt_connected", "1 while the MQTT link is up", registry=registry)
        self.mqtt_messages = Counter("pitstop_mqtt_messages", "MQTT messages received", registry=registry)
        # -- fleet (pitstop/fleet): per-asset jobs over NATS JetStream --
        self.fleet_jobs_published = Counter(
            "pitstop_fleet_jobs_published", "Per-asset jobs published, by kind", ["kind"], registry=registry
        )
        self.fleet_jobs = Counter(
            "pitstop_fleet_jobs",
            "Per-asset jobs run by this worker, by kind and outcome (ok, failed, repeat: done before)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.fleet_job_seconds = Histogram(
            "pitstop_fleet_job_seconds", "Time a per-asset job took on this worker", ["kind"], registry=registry
        )
        self.fleet_partitions_held = Gauge(
            "pitstop_fleet_partitions_held", "Job partitions this worker holds", registry=registry
        )
        self.scheduler_leader = Gauge(
            "pitstop_scheduler_leader", "1 when this instance runs the scheduled jobs", registry=registry
        )
