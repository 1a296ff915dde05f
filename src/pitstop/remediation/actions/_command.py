"""Running a command with a timeout and its output captured (no shell)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from typing import Any


def argv_of(value: Any, what: str) -> list[str]:
    """A command given as a list of strings or one string split like a shell would (no shell runs it)."""
    if isinstance(value, str):
        argv = shlex.split(value)
    elif isinstance(value, Sequence) and all(isinstance(a, str | int | float) for a in value):
        argv = [str(a) for a in value]
    else:
        raise ValueError(f"{what} must be a string or a list of strings")
    if not argv or any("\x00" in a for a in argv):
        raise ValueError(f"{what} must not be empty or contain NUL characters")
    return argv


def run(argv: Sequence[str], timeout_s: float) -> tuple[int | None, str]:
    """(exit code, combined output); exit code None when it timed out or could not start."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout) + _text(exc.stderr)
        return None, f"{out}\n[timed out after {timeout_s:g} s]".strip()
    except OSError as exc:
        return None, f"could not start {argv[0]}: {exc.strerror or exc}"
    return done.returncode, (_text(done.stdout) + _text(done.stderr)).strip()


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
