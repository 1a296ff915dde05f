"""Incidents, idempotent by key `<area>.<condition>:<target>`, with a timeline of every transition."""

from pitstop.incidents.models import Change, Incident, IncidentEvent, IncidentState, parse_key
from pitstop.incidents.registry import IncidentRegistry

__all__ = ["Change", "Incident", "IncidentEvent", "IncidentRegistry", "IncidentState", "parse_key"]
