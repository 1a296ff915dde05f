"""One body limit for every route of the API and the dashboard: `api.max_body_bytes`."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitstop.app import Pitstop
from pitstop.errors import BodyTooLarge


def _too_large(limit: int) -> JSONResponse:
    error = BodyTooLarge(f"the body is larger than {limit} bytes (api.max_body_bytes)")
    return JSONResponse({"error": {"code": error.code, "message": str(error)}}, status_code=413)


class BodyLimit:
    """Answers 413 to a request whose Content-Length is over the limit before the route runs, and to one
    whose streamed (chunked) body passes it while being read: reading then fails, and whatever the
    application made of that is replaced by the 413. Plain ASGI, like the API's `_Measure`: no task
    group or memory streams per request. The limit is read per request, so a changed setting holds at once."""

    def __init__(self, app: ASGIApp, pitstop: Pitstop) -> None:
        self.app = app
        self.pitstop = pitstop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.pitstop.settings.api.max_body_bytes
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(f"the body is larger than {limit} bytes (api.max_body_bytes)")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:  # the application's answer to a body it could not read
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _too_large(limit)(scope, receive, send)
