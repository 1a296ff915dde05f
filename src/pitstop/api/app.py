"""create_app(pitstop) -> the FastAPI application."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.resources import files

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitstop import __version__, web
from pitstop.api.limits import BodyLimit
from pitstop.api.routers import assets, findings, system
from pitstop.api.routers import backup as backup_routes
from pitstop.api.routers import health as health_routes
from pitstop.api.routers import incidents as incident_routes
from pitstop.api.routers import ingest as ingest_routes
from pitstop.api.routers import maintenance as maintenance_routes
from pitstop.api.routers import models as models_routes
from pitstop.api.routers import oncall as oncall_routes
from pitstop.api.routers import prognostics as prognostics_routes
from pitstop.api.routers import remediation as remediation_routes
from pitstop.app import Pitstop
from pitstop.background import ROLES
from pitstop.errors import AuthError, DatabaseUnavailable, InventoryError, NotFound, PitstopError
from pitstop.storage.repos.audit import AuditRepo

log = logging.getLogger("pitstop.api")
_CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
_STATUS = {NotFound: 404, InventoryError: 422, DatabaseUnavailable: 503, AuthError: 401}


def _audit_request(pitstop: Pitstop, actor: str, request: Request, route: str, status: int) -> None:
    """Every change made through the API is in the audit log, even where a route wrote no entry of its own."""
    with pitstop.db.begin() as conn:
        AuditRepo.record(
            conn,
            at=pitstop.clock.now(),
            actor=actor,
            action=f"{request.method} {route}",
            target=request.url.path,
            detail={"status": status},
        )


def _route(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", "unmatched"))


class _Measure:
    """Counts and times every request by route (and says the time in a `Server-Timing` header), and
    puts each successful change by an authenticated caller in the audit log before its response starts. Plain ASGI: a
    `BaseHTTPMiddleware` spends a task group and memory streams on every request, a large part of a
    fast endpoint's cost."""

    def __init__(self, app: ASGIApp, pitstop: Pitstop) -> None:
        self.app = app
        self.pitstop = pitstop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"]
        status = 500

        async def send_measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Every response says how long the server took to start it (dashboard pages, bench/web.py).
                elapsed_ms = (time.perf_counter() - start) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={elapsed_ms:.1f}".encode()),
                ]
                if method in _CHANGES and status < 400:
                    request = Request(scope)
                    # Only an authenticated caller (the key or session check named the actor) can have
                    # changed anything: an anonymous request was refused or sent to the login page.
                    actor = getattr(request.state, "actor", None)
                    if actor and not getattr(request.state, "audited", False):
                        await anyio.to_thread.run_sync(
                            _audit_request, self.pitstop, actor, request, _route(scope), status
                        )
            await send(message)

        await self.app(scope, receive, send_measured)
        path = _route(scope)
        self.pitstop.metrics.http_requests.labels(method, path, str(status)).inc()
        self.pitstop.metrics.http_latency.labels(path).observe(time.perf_counter() - start)


def _error(status: int, code: str, message: str, detail: object = None) -> JSONResponse:
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    if detail is not None:
        body["error"]["detail"] = detail  # type: ignore[index]
    return JSONResponse(body, status_code=status)


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI 5 (it reads FastAPI's OpenAPI 3.1; Swagger UI 4 showed "Unable to render this definition"),
    its files served from the installed fastapi-offline package: the docs work on a plant network with no
    internet."""
    assets = files("fastapi_offline") / "static"
    app.mount("/static/swagger", StaticFiles(directory=str(assets)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="pitstop API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
            # Swagger UI's default validator is an outside service: nothing leaves the machine.
            swagger_ui_parameters={"validatorUrl": None},
        )


def create_app(pitstop: Pitstop, *, run_background: bool = False, roles: Iterable[str] = ROLES) -> FastAPI:
    """`run_background`: also run the scheduler and the background parts (what `pitstop serve` does).
    `roles` (`pitstop serve --role`): without "api" only /health, /ready and /metrics are served;
    the scheduler runs with "scheduler", each background part with its roles (`Pitstop.add_background`)."""
    roles = frozenset(roles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduling = run_background and pitstop.settings.scheduler.enabled and "scheduler" in roles
        scheduler = pitstop.scheduler_runner() if scheduling else None
        if run_background:
            await anyio.to_thread.run_sync(pitstop.start_background, roles)
        if scheduler is not None:
            scheduler.start()
        yield
        if scheduler is not None:
            await anyio.to_thread.run_sync(scheduler.stop)
        if run_background:
            await anyio.to_thread.run_sync(pitstop.stop_background)

    app = FastAPI(
        title="pitstop",
        version=__version__,
        description="Predictive maintenance and self-healing operations. Authenticate with an API key.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.pitstop = pitstop
    _offline_docs(app)

    app.add_middleware(BodyLimit, pitstop=pitstop)  # inside _Measure, which counts its 413s
    app.add_middleware(_Measure, pitstop=pitstop)

    @app.exception_handler(PitstopError)
    async def pitstop_error(request: Request, exc: PitstopError) -> JSONResponse:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        return _error(status, exc.code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, f"http.{exc.status_code}", str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "internal error; the server log has the details")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return _error(422, "request.invalid", "the request is not valid", detail)

    app.include_router(system.router)
    if "api" not in roles:
        return app
    app.include_router(assets.router)
    app.include_router(backup_routes.router)
    app.include_router(health_routes.router)
    app.include_router(incident_routes.router)
    app.include_router(oncall_routes.router)
    app.include_router(ingest_routes.router)
    app.include_router(maintenance_routes.router)
    app.include_router(remediation_routes.router)
    app.include_router(models_routes.router)
    app.include_router(prognostics_routes.router)
    app.include_router(findings.router)
    web.mount(app)  # the dashboard under /ui
    app.add_middleware(models_routes.PredictFastPath, pitstop=pitstop)  # outermost: ahead of every other layer
    return app
