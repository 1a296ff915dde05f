"""Many pitstop processes on many machines: per-asset jobs shared among workers.

`pitstop serve --role api|ingest|worker|scheduler` runs one part of pitstop (all of them by default):
API nodes and ingest nodes are stateless and write readings straight to the database (their keys make
a repeated reading harmless); one scheduler leads by the database lease and, with `[fleet]` set,
publishes each per-asset job (stream scoring, remaining useful life) to NATS JetStream instead of
running it; workers run them.

- `jobs`: what a per-asset job is, which partition an asset hashes into, the record of finished jobs.
- `bus`: the JetStream stream (work-queue retention, one durable consumer per partition with one job
  in flight at a time, so an asset's jobs run in order) and publishing with de-duplication ids.
- `worker`: the worker's background part: partition leases in the database, balanced over the live
  workers (a worker that dies loses its partitions to the others within `lease_seconds`), and the
  consumers of the partitions it holds.

Effects are idempotent: a job is at least once; the scorer advances its checkpoint by compare-and-set,
incidents are keyed, readings have keys, and `fleet_job_runs` records each job id once.
"""
