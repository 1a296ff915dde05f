"""reconnect: re-establish one of pitstop's own links (the MQTT subscriber, the database pool, a poller)."""

from __future__ import annotations

from typing import Any, ClassVar

from pitstop.incidents import Incident
from pitstop.remediation.base import Action, ActionContext, Outcome, Plan
from pitstop.storage.engine import Database


def _how(link: object) -> str:
    if callable(getattr(link, "reconnect", None)):
        return "reconnect"
    if isinstance(link, Database):
        return "dispose the pool and connect again"
    if callable(getattr(link, "stop", None)) and callable(getattr(link, "start", None)):
        return "stop and start"
    return ""


class Reconnect(Action):
    """params: link (its name: a `Background` part such as "mqtt", or "database")."""

    name = "reconnect"
    destructive: ClassVar[bool] = False

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - {"link"}:
            raise ValueError(f"reconnect: unknown parameter(s) {', '.join(sorted(unknown))}")
        link = params.get("link")
        if not isinstance(link, str) or not link:
            raise ValueError("reconnect: give the link's name")
        self.link = link

    def _get(self, ctx: ActionContext) -> object:
        link = ctx.links.get(self.link)
        if link is None or not _how(link):
            known = ", ".join(sorted(n for n, v in ctx.links.items() if _how(v))) or "none"
            raise ValueError(f"reconnect: no reconnectable link {self.link!r}; known: {known}")
        return link

    def plan(self, incident: Incident, ctx: ActionContext, /) -> Plan:
        how = _how(self._get(ctx))
        return Plan(self.name, incident.target, (f"{self.link}: {how}",), self.destructive, {"link": self.link})

    def apply(self, plan: Plan, ctx: ActionContext, /) -> Outcome:
        started = ctx.clock.now()
        link = self._get(ctx)
        try:
            if callable(getattr(link, "reconnect", None)):
                link.reconnect()  # type: ignore[attr-defined]
            elif isinstance(link, Database):
                link.dispose()
                link.ping()
            else:
                link.stop()  # type: ignore[attr-defined]
                link.start()  # type: ignore[attr-defined]
        except Exception as exc:  # a failed reconnect is an outcome, not a crash of the engine
            return self.outcome(plan, ctx, started, False, f"{self.link}: {type(exc).__name__}: {exc}"[:500])
        return self.outcome(plan, ctx, started, True, f"{self.link}: {_how(link)} done")

    def verify(self, plan: Plan, ctx: ActionContext, /) -> tuple[bool, str] | None:
        link = self._get(ctx)
        if isinstance(link, Database):
            try:
                link.ping()
            except Exception as exc:
                return False, f"database: {type(exc).__name__}"
            return True, "database answers"
        state = getattr(link, "state", None)
        if callable(state):
            now = str(state())
            return now == "ok", f"{self.link}: {now}"
        return None
