"""POST /api/readings: readings pushed by gateways, as JSON or CSV."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pitstop.api.deps import Operator, PitstopDep
from pitstop.ingest.http import CSV_TYPES, JSON_TYPES, ingest_body

router = APIRouter(prefix="/api", tags=["ingest"])


class IngestOut(BaseModel):
    stored: int
    duplicates: int
    quarantined: int
    reasons: dict[str, int]
    spooled: int


_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "ts": {"type": ["string", "number"]},
                                "asset": {"type": "string"},
                                "sensor": {"type": "string"},
                                "value": {"type": "number"},
                            },
                        },
                    },
                    {
                        "type": "object",
                        "properties": {
                            "asset": {"type": "string"},
                            "rows": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ]
            }
        },
        "text/csv": {"schema": {"type": "string"}},
    },
    "required": True,
}


@router.post(
    "/readings",
    summary="Push readings: a JSON list, one asset's wide JSON batch, or CSV (operator)",
    description=(
        "JSON: `[{ts, asset, sensor, value}, ...]` or `{asset, rows: [{ts, <sensor>: value, ...}]}`; "
        "CSV: `ts,asset,sensor,value` or `ts,<sensor>,...` with `?asset=`. Timestamps: ISO 8601 with an "
        "offset, or epoch seconds (milliseconds from 1e11). Bad rows are quarantined with a reason; the "
        "others are stored once. 413 over `api.max_body_bytes`; 422 when every row is bad; 503 when the "
        "database is down and the spool is full (nothing was accepted)."
    ),
    openapi_extra={"requestBody": _BODY},
    responses={413: {"description": "body too large"}, 422: {"description": "every row was bad"}},
    response_model=IngestOut,
)
async def post_readings(
    request: Request,
    pitstop: PitstopDep,
    key: Operator,
    asset: Annotated[str | None, Query(description="the asset of a wide CSV body")] = None,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES + CSV_TYPES:
        raise HTTPException(415, "send application/json or text/csv")
    body = await request.body()  # at most api.max_body_bytes: the API's body limit (api/limits.py) answers 413
    # Readings are data, not changes to pitstop: their record is the readings and the quarantine
    # (with the key's name as the source), not one audit row per push, which would also fail
    # while the database is down and the push is being spooled.
    request.state.audited = True
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        pitstop.ingest.executor,
        lambda: ingest_body(pitstop.ingest, body, content_type, asset=asset, source=f"http:{key.name}"),
    )
    out = IngestOut(
        stored=result.stored,
        duplicates=result.duplicates,
        quarantined=result.quarantined,
        reasons=result.reasons,
        spooled=result.spooled,
    )
    if result.quarantined and not (result.stored or result.duplicates or result.spooled):
        message = "every reading was bad: " + ", ".join(f"{k} {v}" for k, v in sorted(result.reasons.items()))
        error = {"code": "ingest.rejected", "message": message, "detail": out.model_dump()}
        return JSONResponse({"error": error}, status_code=422)
    return JSONResponse(out.model_dump())
