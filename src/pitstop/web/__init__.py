"""The dashboard: server-rendered pages under /ui on the API's port, behind the same keys and roles."""

from pitstop.web.routes import mount

__all__ = ["mount"]
