"""Alerts: messages, notifiers (one delivery attempt each) and the router (routes, groups, retries)."""

from pitstop.alerts.base import Alert, AlertItem, Delivery, Notifier
from pitstop.alerts.router import AlertRouter, Route

__all__ = ["Alert", "AlertItem", "AlertRouter", "Delivery", "Notifier", "Route"]
