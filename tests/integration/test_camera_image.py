"""The camera_image check against a real RTSP server (Debian's rtsp-server-perl) fed by a PyAV
publisher started here, and against a real local HTTP server handing out JPEG/PNG snapshots.

The publisher encodes a synthetic camera view (a textured still scene with something moving
through it) and is switched between moods: moving, frozen, dark, blurred, and shifted 38 px.
rtsp-server-perl carries RTP over UDP only, so these checks use `transport = "udp"`.
"""

from __future__ import annotations

import http.server
import io
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from scipy import ndimage

from pitstop.config import Settings
from pitstop.core.types import Status
from pitstop.health.base import CheckContext, Threshold, checks
from pitstop.health.checks.camera import CameraImageCheck
from pitstop.health.runner import CheckRunner
from pitstop.health.specs import CheckSpec
from pitstop.storage import Database
from pitstop.testing.clock import FrozenClock
from pitstop.testing.server import free_port
from pitstop.testing.services import unavailable

W, H, FPS = 320, 240, 10
_rng = np.random.default_rng(7)
# A still scene with edges everywhere (8-px blocks of random grey), like a camera's view of a plant.
STILL = np.kron(_rng.integers(40, 216, (H // 8, W // 8)), np.ones((8, 8))).astype(np.float32)
MOVED_PX = 38
# Quick rounds: 3 frames over 0.4 s, so a round (open, wait for a key frame, grab) takes under a second.
QUICK = {"transport": "udp", "frames": 3, "seconds": 0.4, "timeout_s": 2.0}


def view(mood: str, i: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Frame `i` of the synthetic camera in a mood, as RGB."""
    picture = np.roll(STILL, MOVED_PX, axis=1) if mood == "shifted" else STILL.copy()
    x = 0 if mood == "frozen" else (i * 9) % (W - 24)
    picture[100:140, x : x + 24] = 255.0  # a bar crossing the view: the picture is live
    if mood == "blurred":
        picture = ndimage.gaussian_filter(picture, 3)
    if mood == "dark":
        picture *= 0.02
    gray = np.clip(picture, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


class Publisher(threading.Thread):
    """Pushes the synthetic camera to the server (RTSP ANNOUNCE/RECORD) at 10 frames/s, MPEG-4 with
    a key frame every half second; `mood` changes what it shows from the next frame on."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="rtsp-publisher")
        self.url, self.mood = url, "moving"
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with av.open(self.url, mode="w", format="rtsp", options={"rtsp_transport": "udp"}) as out:
                stream = out.add_stream("mpeg4", rate=FPS)
                stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
                stream.codec_context.gop_size = FPS // 2
                start, i = time.monotonic(), 0
                while not self.stopping.is_set():
                    frame = av.VideoFrame.from_ndarray(view(self.mood, i), format="rgb24")
                    frame.pts = i
                    out.mux(stream.encode(frame))
                    i += 1
                    time.sleep(max(0.0, start + i / FPS - time.monotonic()))
        except Exception as exc:  # reported by the fixture when the stream does not come up
            self.error = exc

    def show(self, mood: str) -> None:
        """Switch mood; a check started after this sees only the new mood (it waits for a key frame)."""
        self.mood = mood
        time.sleep(0.15)


class Camera:
    def __init__(self, url: str, publisher: Publisher, source_port: int) -> None:
        self.url, self.publisher, self.source_port = url, publisher, source_port


def _rtsp_answers(port: int, path: str) -> bool:
    """A DESCRIBE of `path` on the client port answers 200: the publisher's stream is mounted."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"DESCRIBE rtsp://127.0.0.1:{port}{path} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            return sock.recv(200).startswith(b"RTSP/1.0 200")
    except OSError:
        return False


@pytest.fixture(scope="module")
def camera() -> Iterator[Camera]:
    if shutil.which("rtsp-server-perl") is None:
        unavailable("rtsp-server-perl is not installed (apt-get install rtsp-server-perl)")
    client_port, source_port = free_port(), free_port()
    rtp = random.randrange(40000, 60000, 2)
    # The Debian script with its RTP ports moved off the default 20000: the server resets to
    # $RTP_START_PORT whenever no stream is mounted, whatever --rtp_start_port said.
    code = f'require RTSP::Server; $RTSP::Server::RTP_START_PORT = {rtp}; do "/usr/bin/rtsp-server-perl"; die $@ if $@'
    args = ["--clientport", str(client_port), "--serverport", str(source_port), "--rtp_start_port", str(rtp)]
    args += ["--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1", "-l", "0"]
    server = subprocess.Popen(["perl", "-e", code, "--", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    publisher = Publisher(f"rtsp://127.0.0.1:{source_port}/cam")
    try:
        deadline = time.monotonic() + 10
        while not _port_listens(source_port) and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
        publisher.start()
        while not _rtsp_answers(client_port, "/cam") and time.monotonic() < deadline and publisher.is_alive():
            time.sleep(0.1)
        if not _rtsp_answers(client_port, "/cam"):
            stderr = server.stderr.read(2000) if server.poll() is not None and server.stderr else b""
            pytest.fail(f"the RTSP stream did not come up: {publisher.error!r} {stderr!r}")
        yield Camera(f"rtsp://127.0.0.1:{client_port}/cam", publisher, source_port)
    finally:
        publisher.stopping.set()
        if publisher.is_alive():
            publisher.join(5)
        server.terminate()
        server.wait(5)
        if server.stderr:
            server.stderr.close()


def _port_listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def ctx(tmp_path: Path) -> CheckContext:
    return CheckContext(clock=FrozenClock(), db=Database(f"sqlite:///{tmp_path / 'p.db'}"), settings=None)


def check_of(camera: Camera, tmp_path: Path, **params: Any) -> CameraImageCheck:
    return CameraImageCheck(camera.url, params={**QUICK, "reference": str(tmp_path / "cam.npy"), **params})


# -- the stream -----------------------------------------------------------------------------------


def test_a_live_picture_is_healthy_and_teaches_the_check_its_usual(
    camera: Camera, ctx: CheckContext, tmp_path: Path
) -> None:
    camera.publisher.show("moving")
    check = check_of(camera, tmp_path, learn_rounds=2)
    first = check.run(ctx)
    assert first.status is Status.HEALTHY, first.summary
    assert first.summary.startswith("picture ok: 3 frame(s)") and "reference picture learned" in first.summary
    assert first.observed["frames"] == 3 and first.observed["change_pct"] > 0.5
    assert 100 < first.observed["brightness"] < 160 and first.observed["dark_pct"] == 0
    assert "sharpness_ratio" not in first.observed and (tmp_path / "cam.npy").exists()
    second = check.run(ctx)
    assert second.status is Status.HEALTHY and "usual sharpness learned" in second.summary
    assert second.observed["shift_px"] <= 2 and second.observed["scene_match"] > 0.9
    third = check.run(ctx)
    assert third.status is Status.HEALTHY and re.fullmatch(r"picture ok: 3 frame\(s\) in 0\.[4-7] s", third.summary)
    assert 0.8 < third.observed["sharpness_ratio"] < 1.25 and third.issue_key == "camera.image"


def test_a_frozen_picture_is_critical(camera: Camera, ctx: CheckContext, tmp_path: Path) -> None:
    camera.publisher.show("frozen")
    result = check_of(camera, tmp_path).run(ctx)
    assert result.status is Status.CRITICAL
    assert re.match(r"frozen: no change over 3 frames in 0\.[4-7] s \(change_pct 0 < 0.01\)", result.summary)
    assert result.observed["change_pct"] < 0.01
    assert not (tmp_path / "cam.npy").exists(), "a frozen picture is not learned as the usual"


def test_a_dark_picture_is_reported_dark(camera: Camera, ctx: CheckContext, tmp_path: Path) -> None:
    camera.publisher.show("dark")
    result = check_of(camera, tmp_path).run(ctx)
    assert result.status is Status.CRITICAL and result.issue_key == "camera.image"
    assert result.summary.startswith("dark: mean brightness 1/255"), result.summary
    assert "frozen" not in result.summary, "the dark picture still moves"
    assert result.observed["dark_pct"] > 98 and "sharpness_ratio" not in result.observed


def test_a_blurred_picture_is_judged_against_the_learned_sharpness(
    camera: Camera, ctx: CheckContext, tmp_path: Path
) -> None:
    camera.publisher.show("moving")
    check = check_of(camera, tmp_path, learn_rounds=2)
    for _ in range(2):
        assert check.run(ctx).status is Status.HEALTHY
    camera.publisher.show("blurred")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("blurred: sharpness 0.0"), result.summary
    assert "of its usual (sharpness_ratio 0.0" in result.summary and "< 0.25)" in result.summary
    assert result.observed["sharpness_ratio"] < 0.25
    # The usual is kept in the reference file: a new instance (a restart) judges at once, and
    # a blurred picture is not learned as the usual.
    again = check_of(camera, tmp_path, learn_rounds=2).run(ctx)
    assert again.status is Status.CRITICAL and "blurred" in again.summary and "learn" not in again.summary


def test_a_moved_camera_is_found_against_the_reference(camera: Camera, ctx: CheckContext, tmp_path: Path) -> None:
    camera.publisher.show("moving")
    check = check_of(camera, tmp_path, learn_rounds=1)
    assert check.run(ctx).status is Status.HEALTHY
    camera.publisher.show("shifted")
    moved = check.run(ctx)
    assert moved.status is Status.CRITICAL
    assert moved.summary.startswith(f"scene moved {MOVED_PX} px from the reference (shift_px {MOVED_PX}"), moved.summary
    assert abs(moved.observed["shift_px"] - MOVED_PX) <= 1 and moved.observed["scene_match"] > 0.9
    assert 0.8 < moved.observed["sharpness_ratio"] < 1.25, "a moved view is as sharp as ever"
    # A profile's level is data: a view allowed to sway 50 px is fine.
    lenient = check_of(camera, tmp_path, learn_rounds=1)
    lenient.thresholds["shift_px"] = Threshold("shift_px", "above", warning=50)
    assert lenient.run(ctx).status is Status.HEALTHY


def test_deleting_the_reference_or_relearn_learns_the_view_anew(
    camera: Camera, ctx: CheckContext, tmp_path: Path
) -> None:
    camera.publisher.show("moving")
    check = check_of(camera, tmp_path, learn_rounds=1)
    assert check.run(ctx).status is Status.HEALTHY
    camera.publisher.show("shifted")
    (tmp_path / "cam.npy").unlink()  # while the check runs on: its next round learns the new view
    relearned = check.run(ctx)
    assert relearned.status is Status.HEALTHY and "reference picture learned" in relearned.summary
    assert "shift_px" not in relearned.observed and (tmp_path / "cam.npy").exists()
    # params.relearn: the instance's first round (after a restart) learns anew, whatever was kept.
    camera.publisher.show("moving")
    fresh = check_of(camera, tmp_path, learn_rounds=1, relearn=True)
    first = fresh.run(ctx)
    assert first.status is Status.HEALTHY and "reference picture learned" in first.summary
    assert fresh.run(ctx).observed["shift_px"] <= 2


def test_the_runner_stores_the_reference_under_the_data_dir(camera: Camera, tmp_path: Path) -> None:
    camera.publisher.show("moving")
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    ctx = CheckContext(clock=FrozenClock(), db=db, settings=Settings(data_dir=tmp_path))
    spec = CheckSpec("camera_image", camera.url, params=dict(QUICK))
    (result,) = CheckRunner([spec], workers=1).run(ctx)
    assert result.status is Status.HEALTHY and result.error is None, result.summary
    (saved,) = (tmp_path / "camera").glob("*.npy")
    assert saved.name.startswith("127-0-0-1-") and saved.with_suffix(".json").exists()
    assert np.load(saved).shape == (H, W)
    db.dispose()


def test_an_unknown_stream_or_a_dead_server_is_critical_not_an_error(
    camera: Camera, ctx: CheckContext, tmp_path: Path
) -> None:
    missing = CameraImageCheck(camera.url.replace("/cam", "/nothing"), params=QUICK).run(ctx)
    assert missing.status is Status.CRITICAL and missing.summary.startswith("camera rtsp://127.0.0.1:")
    assert "unreachable" in missing.summary and missing.observed == {"frames": 0.0}
    # rtsp-server-perl sends RTP over UDP only: asked for TCP (the default) it answers 400.
    tcp = CameraImageCheck(camera.url, params={"timeout_s": 2.0}).run(ctx)
    assert tcp.status is Status.CRITICAL and tcp.summary.endswith("unreachable (Server returned 400 Bad Request)")
    closed = CameraImageCheck(f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/cam?token=abc", params=QUICK)
    result = closed.run(ctx)
    assert result.status is Status.CRITICAL and "unreachable (Connection refused)" in result.summary
    assert "s3cret" not in result.summary and "abc" not in result.summary and "admin" not in result.summary


def test_a_stream_that_breaks_off_is_a_warning(camera: Camera, ctx: CheckContext) -> None:
    second = Publisher(f"rtsp://127.0.0.1:{camera.source_port}/cam2")
    second.start()
    url = camera.url.replace("/cam", "/cam2")
    client_port = int(url.rsplit(":", 1)[1].split("/")[0])
    deadline = time.monotonic() + 5
    while not _rtsp_answers(client_port, "/cam2") and time.monotonic() < deadline:
        time.sleep(0.1)
    check = CameraImageCheck(url, params={**QUICK, "frames": 5, "seconds": 1.6, "timeout_s": 1.0})
    try:
        threading.Timer(0.7, second.stopping.set).start()  # the camera goes away mid-round
        result = check.run(ctx)
    finally:
        second.stopping.set()
        second.join(5)
    assert result.status is Status.WARNING, result.summary
    assert re.match(r"picture stopped: [1-4] of 5 frames in [1-3]\.\d s", result.summary), result.summary
    assert 1 <= result.observed["frames_missing"] <= 4


def test_a_server_that_never_answers_is_bounded_by_the_timeout(ctx: CheckContext) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = CameraImageCheck(f"rtsp://127.0.0.1:{port}/cam", params={"timeout_s": 1.0}).run(ctx)
        took = time.monotonic() - started
    assert result.status is Status.CRITICAL and result.summary.endswith("unreachable (no answer in 1 s)")
    assert took < 3


# -- snapshots ------------------------------------------------------------------------------------


def encode(rgb: np.ndarray[Any, np.dtype[np.uint8]], codec: str = "mjpeg") -> bytes:
    """One JPEG (or PNG) made by PyAV: the snapshot a camera's web server hands out."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="image2pipe") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height = rgb.shape[1], rgb.shape[0]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "rgb24"
        out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


class Snapshots(http.server.BaseHTTPRequestHandler):
    count = 0
    frozen = b""

    def do_GET(self) -> None:
        Snapshots.count += 1
        if self.path.startswith("/moving.jpg"):
            body, kind = encode(view("moving", Snapshots.count)), "image/jpeg"
        elif self.path == "/frozen.jpg":
            body, kind = Snapshots.frozen, "image/jpeg"
        elif self.path == "/dark.png":
            body, kind = encode(view("dark", Snapshots.count), "png"), "image/png"
        elif self.path == "/page":
            body, kind = b"<html>login</html>", "text/html"
        elif self.path == "/trickle.jpg":  # a byte at a time, each in time, the whole never
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the check hung up: what this is for
            return
        elif self.path == "/slow.jpg":
            time.sleep(1.5)
            body, kind = Snapshots.frozen, "image/jpeg"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def snapshots() -> Iterator[str]:
    Snapshots.frozen = encode(view("frozen", 0))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Snapshots)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


SNAP = {"frames": 3, "seconds": 0.2, "timeout_s": 1.0}


def test_snapshots_are_judged_like_a_stream(snapshots: str, ctx: CheckContext, tmp_path: Path) -> None:
    live = CameraImageCheck(f"{snapshots}/moving.jpg?user=admin&pwd=s3cret", params={**SNAP, "learn_rounds": 1})
    assert live.source == "snapshot"
    first = live.run(ctx)
    assert first.status is Status.HEALTHY and first.observed["frames"] == 3, first.summary
    assert first.observed["change_pct"] > 0.5 and "s3cret" not in first.summary
    assert live.run(ctx).observed["shift_px"] <= 1
    frozen = CameraImageCheck(f"{snapshots}/frozen.jpg", params=SNAP).run(ctx)
    assert frozen.status is Status.CRITICAL and frozen.summary.startswith("frozen: no change over 3 frames")
    assert frozen.observed["change_pct"] == 0
    dark = CameraImageCheck(f"{snapshots}/dark.png", params=SNAP).run(ctx)
    assert dark.status is Status.CRITICAL and re.match(r"dark: mean brightness [0-3]/255", dark.summary), dark.summary


def test_a_snapshot_that_fails_is_critical_with_the_reason(snapshots: str, ctx: CheckContext) -> None:
    cases = {
        "/missing.jpg": "snapshot answered 404",
        "/page": "snapshot is not a JPEG or PNG picture",
        "/slow.jpg": "unreachable (ReadTimeout)",
    }
    for path, why in cases.items():
        result = CameraImageCheck(snapshots + path, params={**SNAP, "timeout_s": 0.5}).run(ctx)
        assert result.status is Status.CRITICAL and result.summary == f"camera {snapshots}{path}: {why}"
    started = time.monotonic()
    trickle = CameraImageCheck(f"{snapshots}/trickle.jpg", params={**SNAP, "timeout_s": 0.5}).run(ctx)
    assert trickle.summary.endswith("snapshot still coming after 1.2 s") and time.monotonic() - started < 2.5
    refused = CameraImageCheck(f"http://127.0.0.1:{free_port()}/snap.jpg", params=SNAP).run(ctx)
    assert refused.status is Status.CRITICAL and refused.summary.endswith("unreachable (ConnectError)")


# -- parameters -----------------------------------------------------------------------------------

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("camera-1", {}, "target"),
    ("file:///etc/passwd", {}, "target"),
    ("rtsp:///nohost", {}, "target"),
    ("rtsp://cam:99999/s", {}, "port"),
    ("rtsp://cam:abc/s", {}, "port"),
    ("camera-1", {"url": 5}, "url"),
    ("camera-1", {"url": "concat:/etc/passwd|/etc/shadow"}, "url"),
    ("rtsp://cam/s", {"source": "ftp"}, "source"),
    ("rtsp://cam/s", {"source": "snapshot"}, "snapshot"),
    ("rtsp://cam/s", {"frames": 0}, "frames"),
    ("rtsp://cam/s", {"frames": 61}, "frames"),
    ("rtsp://cam/s", {"frames": 2.5}, "frames"),
    ("rtsp://cam/s", {"frames": "5"}, "frames"),
    ("rtsp://cam/s", {"frames": True}, "frames"),
    ("rtsp://cam/s", {"seconds": -1}, "seconds"),
    ("rtsp://cam/s", {"seconds": float("inf")}, "seconds"),
    ("rtsp://cam/s", {"seconds": float("nan")}, "seconds"),
    ("rtsp://cam/s", {"seconds": 1e9}, "seconds"),
    ("rtsp://cam/s", {"timeout_s": 0}, "timeout_s"),
    ("rtsp://cam/s", {"timeout_s": 3600}, "timeout_s"),
    ("rtsp://cam/s", {"width": 8}, "width"),
    ("rtsp://cam/s", {"width": 100000}, "width"),
    ("rtsp://cam/s", {"learn_rounds": 0}, "learn_rounds"),
    ("rtsp://cam/s", {"transport": "http"}, "transport"),
    ("rtsp://cam/s", {"reference": "/tmp/ref.txt"}, "reference"),
    ("rtsp://cam/s", {"reference": ["a.npy"]}, "reference"),
    ("rtsp://cam/s", {"relearn": "yes"}, "relearn"),
    ("rtsp://cam/s", {"fps": 5}, "fps"),
]


@pytest.mark.parametrize(("target", "params", "named"), BAD, ids=[f"{t}-{sorted(p)}" for t, p, _ in BAD])
def test_bad_parameters_are_refused_by_name(target: str, params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CameraImageCheck(target, params=params)


def test_a_label_target_takes_its_url_from_params_and_is_registered() -> None:
    check = checks.create(
        "camera_image", target="gate-camera", thresholds=None, params={"url": "rtsp://u:p@cam.local:8554/live"}
    )
    assert isinstance(check, CameraImageCheck) and check.where == "rtsp://cam.local:8554/live"
    assert check.source == "stream" and check.frames == 5 and check.seconds == 4.0 and check.transport == "tcp"
    assert {t.metric for t in CameraImageCheck.default_thresholds} == {
        "change_pct",
        "dark_pct",
        "bright_pct",
        "sharpness_ratio",
        "shift_px",
        "frames_missing",
    }
