"""Hostile input on the stored-file codec, manifests and paths: damage is always an error, never wrong data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.backup import codec
from pitstop.backup.sets import MANIFEST, read_set, safe_relpath
from pitstop.errors import BackupError

KEY = codec.derive_key("passphrase", b"0123456789abcdef")


def _roundtrip(tmp: Path, data: bytes, *, level: int, key: bytes | None) -> Path:
    path = tmp / f"stored-{os.urandom(4).hex()}"
    chunks = [data[i : i + 70_000] for i in range(0, len(data), 70_000)] or [b""]
    info = codec.write_stored(chunks, path, level=level, key=key)
    assert info.size == len(data)
    assert b"".join(codec.read_stored(path, compressed=level > 0, key=key, name="f")) == data
    return path


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000) | st.just(os.urandom(2_500_000)),
    level=st.sampled_from([0, 1, 6]),
    encrypted=st.booleans(),
    where=st.floats(0, 1, exclude_max=True),
    truncate=st.booleans(),
)
def test_damaged_stored_files_fail_loudly(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, level: int, encrypted: bool, where: float, truncate: bool
) -> None:
    key = KEY if encrypted else None
    path = _roundtrip(tmp_path_factory.mktemp("codec"), data, level=level, key=key)
    raw = bytearray(path.read_bytes())
    if not raw:
        return
    at = int(where * len(raw))
    if truncate:
        del raw[at:]
    else:
        raw[at] ^= 0x40
    path.write_bytes(bytes(raw))
    try:
        out = b"".join(codec.read_stored(path, compressed=level > 0, key=key, name="f"))
    except BackupError as exc:
        assert str(exc).startswith("f: damaged")
        return
    # Damage to bytes that carry no data (a gzip header field) is harmless; stored plainly, nothing inside
    # the file can notice, and the manifest's sha256 (checked by SourceReader.chunks) does.
    assert out == data or (level == 0 and key is None)


def test_a_wrong_key_fails_on_the_first_record(tmp_path: Path) -> None:
    path = _roundtrip(tmp_path, b"secret model weights" * 1000, level=1, key=KEY)
    other = codec.derive_key("another", b"0123456789abcdef")
    with pytest.raises(BackupError, match="authentication failed in record 0"):
        list(codec.read_stored(path, compressed=True, key=other, name="f"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_relative_paths_never_leave_their_root(path: str) -> None:
    try:
        rel = safe_relpath(path)
    except BackupError:
        return
    root = Path("/srv/root")
    assert (root / rel).resolve().is_relative_to(root)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_hostile_manifests_are_one_clear_error(tmp_path_factory: pytest.TempPathFactory, value: object) -> None:
    directory = tmp_path_factory.mktemp("set")
    (directory / MANIFEST).write_text(json.dumps(value))
    with pytest.raises(BackupError, match="manifest is damaged"):
        read_set(directory)
