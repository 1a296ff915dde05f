"""Maintenance management: procedures as code, schedules, window capacity, work orders, the
maintenance log, compliance and KPIs, the knowledge base and emergency response."""

from pitstop.maintenance.log import LogEntry, MaintenanceLog
from pitstop.maintenance.runs import Answer, Run
from pitstop.maintenance.service import Maintenance
from pitstop.maintenance.workorders import OrderState, WorkOrder, WorkOrderService

__all__ = ["Answer", "LogEntry", "Maintenance", "MaintenanceLog", "OrderState", "Run", "WorkOrder", "WorkOrderService"]
