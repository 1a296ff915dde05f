"""The REST API: a thin edge over the services of the Pitstop object."""

from pitstop.api.app import create_app

__all__ = ["create_app"]
