"""Settings: defaults < pitstop.toml < PITSTOP_* environment < CLI flags."""

from pitstop.config.loader import load_settings, masked
from pitstop.config.models import Settings

__all__ = ["Settings", "load_settings", "masked"]
