"""Jobs driven by the injected clock; every run recorded; one leader among instances."""

from pitstop.scheduler.scheduler import Job, Scheduler, SchedulerRunner

__all__ = ["Job", "Scheduler", "SchedulerRunner"]
