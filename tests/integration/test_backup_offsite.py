"""The off-site copy on real remote stores, each started by the test on a free port of 127.0.0.1:

- S3: moto's server (`python -m moto.server`) with IAM authentication switched on, so every request
  is signed and checked against an access key the test created;
- SFTP: OpenSSH's sshd (Debian's openssh-server) as a child process with its own host key, config,
  authorized_keys and port.

On each: backup, verify against the remote copy, a drill that restores from the remote copy alone
(the local sets deleted first), and prune applying the retention there too; then the failures:
remote unreachable during a backup, wrong credentials, a tampered remote object, a changed or
unknown SFTP host key. Skips (fails under PITSTOP_REQUIRE_SERVICES=1) when moto or sshd is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from pitstop.api import create_app
from pitstop.app import build
from pitstop.backup import BackupService
from pitstop.backup.offsite import HostKeyRefused, fingerprint
from pitstop.config import Settings
from pitstop.config.loader import load_settings
from pitstop.core.types import Role
from pitstop.errors import BackupError, ConfigError, PitstopError
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port
from pitstop.testing.services import port_open, unavailable
from tests.conftest import auth

SSHD = Path("/usr/sbin/sshd")
# Every tier but keep_last off: four daily backups, two kept, in either destination.
KEEP_TWO = {"keep_last": 2, "daily": 0, "weekly": 0, "monthly": 0, "quarterly": 0, "yearly": 0}


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} did not start on port {port}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _ed25519(path: Path) -> Ed25519PrivateKey:
    """A new key written as an OpenSSH private key file (0600); returns it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def _public_line(key: Ed25519PrivateKey) -> str:
    """`ssh-ed25519 AAAA...`, as in authorized_keys and known_hosts."""
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _fingerprint(key: Ed25519PrivateKey) -> str:
    import base64

    return fingerprint(base64.b64decode(_public_line(key).split()[1]))


# -- the peers ------------------------------------------------------------------------------------


@dataclass
class S3Peer:
    endpoint: str
    key_id: str
    secret: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Peer]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        unavailable("moto's S3 server is not installed (pip install 'moto[server]' boto3)")
    import boto3
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log, "moto")
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        iam.create_user(UserName="pitstop-backup")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="pitstop-backup", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="pitstop-backup")["AccessKey"]
        # From here on every request is authenticated: its signature checked against that key's secret.
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
        yield S3Peer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _stop(process)


@dataclass
class SshPeer:
    port: int
    user: str
    key_file: Path
    host_key: Ed25519PrivateKey
    dir: Path

    def known_hosts(self, path: Path, key: Ed25519PrivateKey | None = None) -> Path:
        """A known_hosts file naming this server with `key` (default: its own host key)."""
        path.write_text(f"[127.0.0.1]:{self.port} {_public_line(key or self.host_key)}\n")
        return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshPeer]:
    if not SSHD.is_file():
        unavailable("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    if importlib.util.find_spec("paramiko") is None:
        unavailable("paramiko is not installed")
    d = tmp_path_factory.mktemp("sshd")
    d.chmod(0o700)
    host_key = _ed25519(d / "host_key")
    client_key = _ed25519(d / "client_key")
    (d / "authorized_keys").write_text(_public_line(client_key) + "\n")
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = d / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log, "sshd")
        import getpass

        yield SshPeer(port, getpass.getuser(), d / "client_key", host_key, d)
    finally:
        _stop(process)


class Remote:
    """One remote store as a test sees it: the settings pointing at it, and direct access to what is there."""

    url: str
    offsite: dict[str, Any]

    def set_ids(self) -> set[str]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def remove(self, key: str) -> None:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        try:
            self.read(key)
        except Exception:
            return False
        return True

    def flip(self, key: str, offset: int) -> None:
        data = bytearray(self.read(key))
        data[offset % len(data)] ^= 0x01
        self.write(key, bytes(data))


class S3Remote(Remote):
    def __init__(self, peer: S3Peer) -> None:
        self.client = peer.client()
        self.bucket = f"pitstop-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=self.bucket)
        self.url = f"s3://{self.bucket}/plant-a/pitstop"
        self.offsite = {
            "url": self.url,
            "endpoint_url": peer.endpoint,
            "region": "us-east-1",
            "access_key_id": peer.key_id,
            "secret_access_key": peer.secret,
        }

    def _keys(self) -> list[str]:
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix="plant-a/pitstop/").get("Contents", [])
        return [o["Key"].removeprefix("plant-a/pitstop/") for o in found]

    def set_ids(self) -> set[str]:
        return {k.split("/")[0] for k in self._keys() if k.endswith("/manifest.json")}

    def read(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=f"plant-a/pitstop/{key}")["Body"].read()
        return data

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"plant-a/pitstop/{key}", Body=data)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"plant-a/pitstop/{key}")


class SftpRemote(Remote):
    """sshd serves this machine's files: what is on the server is read and changed in place."""

    def __init__(self, peer: SshPeer, root: Path) -> None:
        self.root = root
        root.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sftp://{peer.user}@127.0.0.1:{peer.port}{root}"
        self.offsite = {
            "url": self.url,
            "key_file": str(peer.key_file),
            "known_hosts": str(peer.known_hosts(root.parent / "known_hosts")),
        }

    def set_ids(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if (p / "manifest.json").is_file()}

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        (self.root / key).write_bytes(data)

    def remove(self, key: str) -> None:
        (self.root / key).unlink()


@pytest.fixture(params=["s3", "sftp"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    if request.param == "s3":
        return S3Remote(request.getfixturevalue("s3_server"))
    return SftpRemote(request.getfixturevalue("sshd"), tmp_path / "server" / "srv" / "pitstop")


# -- the service ----------------------------------------------------------------------------------


def _models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    np.save(root / "pump-1.npy", np.arange(300_000, dtype=np.float64))  # 2.4 MB: several records and parts
    (root / "notes.txt").write_text("twin for pump-1\n")
    return root


def _service(tmp_path: Path, clock: FrozenClock, offsite: object, **backup: Any) -> BackupService:
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    models = _models(tmp_path) if not (tmp_path / "models").exists() else tmp_path / "models"
    sources = [{"name": "models", "kind": "models", "path": str(models)}]
    settings = Settings(
        data_dir=tmp_path / "data", backup={"schedule": False, "sources": sources, "offsite": offsite, **backup}
    )
    return build(settings, clock=clock, db=db).backup


# -- the round trip on each destination -----------------------------------------------------------


def test_round_trip_backup_verify_drill_from_the_copy_alone_and_prune(
    remote: Remote, tmp_path: Path, clock: FrozenClock
) -> None:
    service = _service(tmp_path, clock, remote.offsite, encryption_key="correct horse", retention=KEEP_TWO)
    made = []
    for _ in range(4):
        made.append(service.run().id)
        clock.advance(timedelta(days=1))
    backup = service.records.last("backup")
    assert backup is not None and backup.outcome == "ok"
    assert backup.detail["copies"] == [f"{remote.url}/{made[-1]}"]
    assert remote.set_ids() == set(made)
    listed = service.list_sets(offsite=True)
    assert [s.id for s in listed] == made[::-1]
    assert listed[0].location == f"{remote.url}/{made[-1]}"
    # the copy holds the local bytes: encrypted, never the plain text
    notes = listed[0].manifest.source("models").file("notes.txt")
    assert notes is not None and b"twin for pump-1" not in remote.read(f"{made[-1]}/{notes.stored}")

    copy, problems = service.verify("latest", offsite=True)
    assert (copy.id, problems) == (made[-1], [])
    verified = service.records.last("verify")
    assert verified is not None and verified.outcome == "ok"
    assert verified.detail["offsite"] is True and verified.detail["copy"] == f"{remote.url}/{made[-1]}"

    # Nothing local is left to restore from: the drill downloads the copy and restores that.
    shutil.rmtree(service.destination)
    assert service.list_sets() == []
    drill = service.drill(offsite=True)
    assert drill.ok and drill.set_id == made[-1], drill
    assert [s.source for s in drill.sources] == ["pitstop-db", "models"]
    drilled = service.records.last("drill")
    assert drilled is not None and drilled.outcome == "ok" and drilled.detail["offsite"] is True
    assert not list((tmp_path / "data").glob(".offsite-*")), "the downloaded copy is removed after the drill"
    older = service.drill(made[0], offsite=True)
    assert older.ok and older.set_id == made[0]

    # The same retention applies there: keep the last two.
    results = service.prune()
    offsite = results[-1]
    assert offsite.destination == remote.url
    assert sorted(offsite.deleted) == sorted(made[:2])
    assert remote.set_ids() == set(made[2:])
    assert [s.id for s in service.list_sets(offsite=True)] == made[:1:-1]
    pruned = service.records.last("prune")
    assert pruned is not None and pruned.outcome == "ok"
    assert sorted(pruned.detail["deleted"]) == sorted(f"{remote.url}/{i}" for i in made[:2])
    assert service.prune(dry_run=True)[-1].deleted == []


def test_a_tampered_remote_object_is_named_by_verify(remote: Remote, tmp_path: Path, clock: FrozenClock) -> None:
    service = _service(tmp_path, clock, remote.offsite, include_pitstop_db=False)
    backup_set = service.run()
    npy = backup_set.manifest.source("models").file("pump-1.npy")
    notes = backup_set.manifest.source("models").file("notes.txt")
    assert npy is not None and notes is not None
    assert service.verify(offsite=True)[1] == []

    remote.flip(f"{backup_set.id}/{npy.stored}", 1000)
    _, problems = service.verify(backup_set.id, offsite=True)
    assert problems == ["models/pump-1.npy: stored checksum differs from the manifest"]
    failed = service.records.last("verify")
    assert failed is not None and failed.outcome == "failed" and failed.detail["offsite"] is True
    assert failed.detail["problems"] == problems
    assert service.verify(backup_set.id)[1] == []  # the local set is untouched
    drill = service.drill(offsite=True)
    assert not drill.ok
    (problem,) = (p for s in drill.sources for p in s.problems)
    assert "models/pump-1.npy: damaged" in problem

    remote.remove(f"{backup_set.id}/{notes.stored}")
    _, problems = service.verify(backup_set.id, offsite=True)
    assert "models/notes.txt: missing in the off-site copy" in problems
    with pytest.raises(BackupError, match=re.escape("notes.txt: missing in the off-site copy")):
        service.drill(offsite=True)
    drilled = service.records.last("drill")
    assert drilled is not None and drilled.outcome == "failed" and drilled.detail["offsite"] is True

    # A manifest rewritten off-site (here: only its reason) no longer matches the local set's.
    manifest = json.loads(remote.read(f"{backup_set.id}/manifest.json"))
    manifest["reason"] = "scheduled"
    remote.write(f"{backup_set.id}/manifest.json", json.dumps(manifest).encode())
    _, problems = service.verify(backup_set.id, offsite=True)
    assert problems[0] == "the manifest differs from the local set's (changed off-site)"
    # and one that is not a manifest leaves the set out of the listing, as locally
    remote.write(f"{backup_set.id}/manifest.json", b'{"format": 1, "id": "../../etc"}')
    assert service.list_sets(offsite=True) == []
    with pytest.raises(BackupError, match="manifest is damaged"):
        service.verify(backup_set.id, offsite=True)


def test_prune_removes_interrupted_copies_there_once_stale(remote: Remote, tmp_path: Path, clock: FrozenClock) -> None:
    service = _service(tmp_path, clock, remote.offsite, include_pitstop_db=False)
    made = service.run()
    # S3 has no rename: an interrupted copy is a set's prefix without its manifest; elsewhere a .partial- directory
    partial = "" if isinstance(remote, S3Remote) else ".partial-"
    old, young = f"{partial}20200101T000000Z-abcdef", f"{partial}{made.id[:16]}-fedcba"
    for name in (old, young, "notes"):
        remote.write(f"{name}/data/models/000000", b"half a file")
    (result,) = [r for r in service.prune(dry_run=True) if r.destination == remote.url]
    assert result.stale_partials == [old]
    service.prune()
    assert remote.set_ids() == {made.id}
    assert not remote.exists(f"{old}/data/models/000000")
    assert remote.exists(f"{young}/data/models/000000") and remote.exists("notes/data/models/000000")


def test_a_file_bigger_than_one_s3_part_goes_up_in_parts(s3_server: S3Peer, tmp_path: Path, clock: FrozenClock) -> None:
    remote = S3Remote(s3_server)
    models = _models(tmp_path)
    (models / "big.bin").write_bytes(os.urandom(17 * 1024 * 1024))  # three 8 MiB parts; random: stays that big
    service = _service(tmp_path, clock, remote.offsite, include_pitstop_db=False, encryption_key="k")
    made = service.run()
    big = made.manifest.source("models").file("big.bin")
    assert big is not None and big.stored_size > 17 * 1024 * 1024
    head = remote.client.head_object(Bucket=remote.bucket, Key=f"plant-a/pitstop/{made.id}/{big.stored}")
    assert head["ContentLength"] == big.stored_size and head["ETag"].strip('"').endswith("-3")  # a multipart ETag
    assert service.verify(offsite=True)[1] == []
    remote.flip(f"{made.id}/{big.stored}", 12 * 1024 * 1024)  # inside the second part
    assert service.verify(offsite=True)[1] == ["models/big.bin: stored checksum differs from the manifest"]


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_an_unreachable_copy_keeps_the_local_set_and_records_the_failure(
    kind: str, tmp_path: Path, clock: FrozenClock
) -> None:
    port = free_port()  # nothing listens there
    if kind == "s3":
        offsite: dict[str, Any] = {
            "url": "s3://pitstop-backups/x",
            "endpoint_url": f"http://127.0.0.1:{port}",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "not-a-secret-but-hidden",
            "timeout_s": 2,
        }
    else:
        _ed25519(tmp_path / "key")
        offsite = {
            "url": f"sftp://backup@127.0.0.1:{port}/srv/pitstop",
            "key_file": str(tmp_path / "key"),
            "host_key_fingerprint": "SHA256:" + "A" * 43,
            "timeout_s": 2,
        }
    service = _service(tmp_path, clock, offsite)
    with pytest.raises(BackupError, match=r"the off-site copy failed: .*cannot reach"):
        service.run()
    (local,) = service.list_sets()
    assert service.verify(local.id)[1] == []
    failed = service.records.last("backup")
    assert failed is not None and failed.outcome == "failed" and failed.set_id == local.id
    assert failed.detail["offsite"] is True and "cannot reach" in failed.detail["error"]
    assert "not-a-secret-but-hidden" not in json.dumps(failed.detail)

    with pytest.raises(BackupError, match="cannot reach"):
        service.list_sets(offsite=True)
    with pytest.raises(BackupError, match="cannot reach"):
        service.drill(offsite=True)
    drill = service.records.last("drill")
    assert drill is not None and drill.outcome == "failed" and drill.detail["offsite"] is True
    # prune still prunes here, records that the copy was out of reach, and says so
    with pytest.raises(BackupError, match="pruned here, but not the off-site copy"):
        service.prune()
    prune = service.records.last("prune")
    assert prune is not None and prune.outcome == "failed" and prune.detail["offsite"] is True


# -- credentials and host keys --------------------------------------------------------------------


def test_s3_wrong_credentials_are_a_clear_error(s3_server: S3Peer, tmp_path: Path, clock: FrozenClock) -> None:
    remote = S3Remote(s3_server)
    wrong_secret = {**remote.offsite, "secret_access_key": "wrong-secret-value"}
    service = _service(tmp_path, clock, wrong_secret, include_pitstop_db=False)
    with pytest.raises(BackupError, match=r"credentials were refused \(SignatureDoesNotMatch\)") as raised:
        service.run()
    assert "wrong-secret-value" not in str(raised.value)
    assert remote.set_ids() == set()

    unknown = {**remote.offsite, "access_key_id": "AKIAUNKNOWN000000000"}
    (tmp_path / "other").mkdir()
    other = _service(tmp_path / "other", clock, unknown, include_pitstop_db=False)
    with pytest.raises(BackupError, match=r"credentials were refused \(InvalidAccessKeyId\)"):
        other.list_sets(offsite=True)
    # the right ones work against the same server
    (tmp_path / "right").mkdir()
    right = _service(tmp_path / "right", clock, remote.offsite, include_pitstop_db=False)
    made = right.run()
    assert [s.id for s in right.list_sets(offsite=True)] == [made.id]


def test_sftp_a_key_the_server_does_not_know_is_refused(sshd: SshPeer, tmp_path: Path, clock: FrozenClock) -> None:
    remote = SftpRemote(sshd, tmp_path / "srv")
    _ed25519(tmp_path / "stranger")
    service = _service(tmp_path, clock, {**remote.offsite, "key_file": str(tmp_path / "stranger")})
    with pytest.raises(BackupError, match="the server refused the login of"):
        service.run()
    assert not remote.root.exists()


def test_sftp_refuses_a_changed_or_unknown_host_key(sshd: SshPeer, tmp_path: Path, clock: FrozenClock) -> None:
    remote = SftpRemote(sshd, tmp_path / "srv")
    impostor = Ed25519PrivateKey.generate()  # what a man in the middle would show
    changed = {**remote.offsite, "known_hosts": str(sshd.known_hosts(tmp_path / "changed", impostor))}
    service = _service(tmp_path, clock, changed, include_pitstop_db=False)
    with pytest.raises(BackupError, match="is not the one in known_hosts") as raised:
        service.run()
    assert isinstance(raised.value.__cause__, HostKeyRefused)
    assert _fingerprint(sshd.host_key) in str(raised.value)  # what was offered, to compare by hand
    assert not remote.root.exists()

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyRefused, match=re.escape("is not in backup.offsite.known_hosts: refused")):
        _service(tmp_path, clock, {**remote.offsite, "known_hosts": str(empty)}).list_sets(offsite=True)

    by_fingerprint = {k: v for k, v in remote.offsite.items() if k != "known_hosts"}
    wrong = {**by_fingerprint, "host_key_fingerprint": _fingerprint(impostor)}
    with pytest.raises(HostKeyRefused, match="not the configured host_key_fingerprint"):
        _service(tmp_path, clock, wrong).list_sets(offsite=True)
    assert not remote.root.exists()

    right = _service(tmp_path, clock, {**by_fingerprint, "host_key_fingerprint": _fingerprint(sshd.host_key)})
    made = right.run()
    assert [s.id for s in right.list_sets(offsite=True)] == [made.id]


# -- settings -------------------------------------------------------------------------------------

KEY = "/etc/pitstop/key"
HOSTS = "/etc/pitstop/known_hosts"


@pytest.mark.parametrize(
    ("offsite", "message"),
    [
        ("ftp://nas/backups", "unknown scheme 'ftp'"),
        ("s3://Not_A_Bucket/x", "is not an S3 bucket name"),
        ("s3://ab/x", "is not an S3 bucket name"),
        ("s3://key:secret@bucket/x", "not in the s3:// URL"),
        ("s3://bucket/a/../b", "'..' segments"),
        ("s3://bucket/x?versionId=1", "no query"),
        ({"url": "s3://bucket/x", "endpoint_url": "file:///etc"}, "endpoint_url: give an http"),
        ({"url": "s3://bucket/x", "access_key_id": "AKIA"}, "give both, or neither"),
        ({"url": "s3://bucket/x", "known_hosts": HOSTS}, "known_hosts: not an option of a s3"),
        ({"url": "/mnt/nas", "region": "eu-west-1"}, "region: not an option of a folder"),
        ("sftp://nas/srv", "names the user and the host"),
        ({"url": "sftp://u:pw@nas/srv", "key_file": KEY, "known_hosts": HOSTS}, "no password"),
        ({"url": "sftp://u@nas:0/srv", "key_file": KEY, "known_hosts": HOSTS}, "port is not a number"),
        ({"url": "sftp://u@nas:99999/srv", "key_file": KEY, "known_hosts": HOSTS}, "port is not a number"),
        ({"url": "sftp://u@nas/", "key_file": KEY, "known_hosts": HOSTS}, "not '/'"),
        ({"url": "sftp://u@nas/srv/../etc", "key_file": KEY, "known_hosts": HOSTS}, "without '..'"),
        ({"url": "sftp://u@nas/srv", "known_hosts": HOSTS}, "key_file: an sftp://"),
        ({"url": "sftp://u@nas/srv", "key_file": KEY}, "known_hosts or host_key_fingerprint"),
        ({"url": "sftp://u@nas/srv", "key_file": KEY, "host_key_fingerprint": "MD5:aa:bb"}, "SHA256:<43"),
        ({"url": "sftp://u@nas/srv", "key_file": KEY, "known_hosts": HOSTS, "access_key_id": "x"}, "access_key_id"),
        ({"url": "sftp://u@nas/srv\nx", "key_file": KEY, "known_hosts": HOSTS}, "control characters"),
        ({"url": ""}, "at least 1 character"),
        ({"url": "s3://bucket/x", "timeout_s": 0}, "timeout_s"),
        ({"url": "s3://bucket/x", "bogus": 1}, "bogus"),
    ],
)
def test_bad_offsite_settings_are_refused_naming_the_option(offsite: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(backup={"offsite": offsite})


def test_a_bad_offsite_setting_is_named_without_repeating_the_secret(tmp_path: Path) -> None:
    config = tmp_path / "pitstop.toml"
    config.write_text('[backup.offsite]\nurl = "s3://bucket/x"\nsecret_access_key = "hunter2-secret"\n')
    with pytest.raises(ConfigError, match=re.escape("backup.offsite: access_key_id and secret_access_key")) as raised:
        load_settings(config)
    assert "hunter2" not in str(raised.value)


def test_offsite_settings_take_a_path_a_url_or_a_table_with_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(backup={"offsite": "/mnt/nas/pitstop"}).backup.offsite.kind == "folder"  # type: ignore[union-attr]
    monkeypatch.setenv("PITSTOP_BACKUP__OFFSITE__URL", "s3://plant-backups/pitstop/")
    monkeypatch.setenv("PITSTOP_BACKUP__OFFSITE__ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("PITSTOP_BACKUP__OFFSITE__SECRET_ACCESS_KEY", "s3cr3t")
    offsite = Settings().backup.offsite
    assert offsite is not None and (offsite.kind, offsite.bucket, offsite.prefix) == ("s3", "plant-backups", "pitstop")
    assert offsite.secret_access_key is not None and offsite.secret_access_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(offsite)


def test_a_mounted_folder_gets_the_same_verify_drill_and_prune(tmp_path: Path, clock: FrozenClock) -> None:
    share = tmp_path / "share"
    service = _service(tmp_path, clock, str(share), retention=KEEP_TWO)
    made = []
    for _ in range(3):
        made.append(service.run().id)
        clock.advance(timedelta(days=1))
    assert service.verify(offsite=True)[1] == []
    shutil.rmtree(service.destination)
    assert service.drill(offsite=True).ok
    assert service.prune()[-1].deleted == [made[0]]
    assert sorted(p.name for p in share.iterdir()) == sorted(made[1:])


# -- the CLI and the API --------------------------------------------------------------------------


def _cli(config: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    from pitstop.cli.main import app

    result = CliRunner().invoke(app, ["--config", str(config), *args], env=env)
    if isinstance(result.exception, PitstopError):
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.output


def test_cli_lists_verifies_and_drills_the_offsite_copy(s3_server: S3Peer, tmp_path: Path) -> None:
    remote = S3Remote(s3_server)
    models = _models(tmp_path)
    config = tmp_path / "pitstop.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[backup]\nschedule = false\n'
        f'[[backup.sources]]\nname = "models"\nkind = "models"\npath = "{models}"\n'
        f'[backup.offsite]\nurl = "{remote.url}"\nendpoint_url = "{s3_server.endpoint}"\nregion = "us-east-1"\n'
        f'access_key_id = "{s3_server.key_id}"\n'
    )
    env = {"PITSTOP_BACKUP__OFFSITE__SECRET_ACCESS_KEY": s3_server.secret}  # the secret from the environment
    assert _cli(config, "db", "upgrade", env=env)[0] == 0
    code, output = _cli(config, "backup", "run", "--json", env=env)
    assert code == 0, output
    made = json.loads(output)["id"]

    code, output = _cli(config, "backup", "list", "--offsite", "--json", env=env)
    assert code == 0, output
    (listed,) = json.loads(output)
    assert (listed["id"], listed["path"]) == (made, f"{remote.url}/{made}")
    code, output = _cli(config, "backup", "verify", "--offsite", env=env)
    assert code == 0 and "(off-site): 3 files match the manifest" in output, output

    shutil.rmtree(tmp_path / "data" / "backups")
    code, output = _cli(config, "backup", "drill", "--from-offsite", "--json", env=env)
    assert code == 0, output
    assert json.loads(output)["ok"] is True and json.loads(output)["set"] == made

    code, output = _cli(config, "backup", "verify", "--offsite", env={})  # no secret: refused, said clearly
    assert code != 0 and "backup.offsite: access_key_id and secret_access_key: give both" in output


def test_api_lists_verifies_and_drills_the_offsite_copy(s3_server: S3Peer, tmp_path: Path, clock: FrozenClock) -> None:
    remote = S3Remote(s3_server)
    db = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    db.upgrade()
    pitstop = build(
        Settings(data_dir=tmp_path, backup={"schedule": False, "offsite": remote.offsite}), clock=clock, db=db
    )
    viewer, operator, admin = (
        auth(pitstop.keys.create(f"t-{r.value}", r, clock.now())[1]) for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
    )
    with TestClient(create_app(pitstop)) as client:
        made = client.post("/api/backups", headers=admin).json()["id"]
        listed = client.get("/api/backups?offsite=true", headers=viewer)
        assert listed.status_code == 200, listed.text
        assert [s["id"] for s in listed.json()] == [made]
        verified = client.post("/api/backups/latest/verify?offsite=true", headers=operator).json()
        assert verified == {"set_id": made, "ok": True, "problems": []}
        shutil.rmtree(pitstop.backup.destination)
        assert client.get("/api/backups", headers=viewer).json() == []
        drill = client.post("/api/backups/drill?from_offsite=true", headers=admin)
        assert drill.status_code == 200, drill.text
        assert drill.json()["ok"] is True and drill.json()["set_id"] == made
        assert client.post("/api/backups/drill?from_offsite=true", headers=operator).status_code == 403
