"""Request dependencies: the Pitstop object and API-key authentication with roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime

from pitstop.app import Pitstop
from pitstop.core.types import Role
from pitstop.storage.repos.keys import ApiKey

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer ps_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key: `X-API-Key: ps_...`")


def get_pitstop(request: Request) -> Pitstop:
    pitstop: Pitstop = request.app.state.pitstop
    return pitstop


PitstopDep = Annotated[Pitstop, Depends(get_pitstop)]


def _plausible(value: datetime) -> datetime:
    # Time arithmetic on a year-1 or year-9999 instant overflows (a window of days before or after it).
    if not 1970 <= value.year <= 9998:
        raise ValueError("must be a time from 1970 to 9998")
    return value


# Every time the API takes (queries and bodies): timezone-aware, from 1970 to 9998.
Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]


def require(role: Role) -> Callable[..., ApiKey]:
    """A dependency that admits keys of `role` or above: 401 without a valid key, 403 below the role."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> ApiKey:
        token = header or (bearer.credentials if bearer else None)
        pitstop = get_pitstop(request)
        key = pitstop.keys.authenticate(token) if token else None
        if key is None:
            raise HTTPException(401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"})
        if not key.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role; the key has {key.role.value}")
        request.state.actor = f"key:{key.name}:{key.prefix}"
        return key

    return dependency


Viewer = Annotated[ApiKey, Depends(require(Role.VIEWER))]
Operator = Annotated[ApiKey, Depends(require(Role.OPERATOR))]
Admin = Annotated[ApiKey, Depends(require(Role.ADMIN))]
