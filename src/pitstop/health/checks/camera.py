"""Camera image check: grab a few frames and judge the picture, not just the link.

The `rtsp` check proves a camera answers; this one looks at what it shows: a picture that stopped
changing (frozen), a black or blown-out picture, a picture gone soft (out of focus, a dirty or
fogged lens) and a camera knocked off its view. Blur and movement are judged against the
camera's own usual, learned from its first healthy rounds and kept in a reference file.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import re
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

import httpx
import numpy as np

from pitstop.core.types import Status
from pitstop.health.base import Check, CheckContext, CheckResult, Threshold

if TYPE_CHECKING:
    import av.video.frame
    from numpy.typing import NDArray

    Gray = NDArray[np.float32]

PARAMS = {
    "url",
    "source",
    "frames",
    "seconds",
    "timeout_s",
    "transport",
    "width",
    "reference",
    "learn_rounds",
    "relearn",
}
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
# FFmpeg follows what a stream points to (an HLS playlist names its segments, RTSP may tunnel over
# HTTP): only network protocols, so no configured or served URL can make it read a local file.
PROTOCOLS = "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto"
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024
SMOOTH_PX = 2.0  # the scale of detail `shift` compares views at, in pixels
DARK_LEVEL, BRIGHT_LEVEL = 16, 239  # gray levels (0..255) that count as "near black" / "near white"

CHANGE = Threshold("change_pct", "below", critical=0.01, clear=0.03)
DARK = Threshold("dark_pct", "above", warning=90, critical=98, clear=85)
BRIGHT = Threshold("bright_pct", "above", warning=90, critical=98, clear=85)
SHARPNESS = Threshold("sharpness_ratio", "below", warning=0.5, critical=0.25, clear=0.6)
SHIFT = Threshold("shift_px", "above", warning=8, critical=24, clear=5)
MISSING = Threshold("frames_missing", "above", warning=1)


@dataclass
class Learned:
    """What the camera usually shows: a reference picture and its usual sharpness."""

    reference: Gray | None = None
    sharpness: list[float] = field(default_factory=list)  # one per healthy round while learning
    baseline: float | None = None  # the median of those, once there are `learn_rounds` of them

    @property
    def empty(self) -> bool:
        return self.reference is None and not self.sharpness


class Unreachable(Exception):
    """The camera gave no picture; the message says why, without its URL (it may hold a password)."""


class CameraImageCheck(Check):
    """Grabs `frames` frames over `seconds` from a camera and judges the picture.

    target: an rtsp(s):// stream URL or an http(s):// snapshot URL (JPEG or PNG); or a label, with
    the URL in params.url (give it as a secret: camera URLs carry passwords). params: source
    ("stream", or "snapshot" for http(s)), frames (5), seconds (4), timeout_s (5), transport
    ("tcp" or "udp", RTSP), width (320: pictures are judged at most this wide), reference (the
    .npy file kept; default <data_dir>/camera/<camera>.npy), learn_rounds (3), relearn (false).

    Observed: frames, frames_missing (asked for but not had in time: the stream broke off),
    change_pct (the largest mean change between consecutive frames, % of full scale), brightness
    (0..255), dark_pct and bright_pct (% of pixels near black / near white), sharpness (variance
    of the Laplacian) and, once learned, sharpness_ratio (against the camera's usual sharpness),
    shift_px (pixels of the judged picture) and scene_match (1 = the same view) against the
    reference picture.
    """

    name = "camera_image"
    issue = "camera.image"
    waits_on_network = True
    # A round takes at most about seconds + 3 x timeout_s (opening, grabbing, the last read): 50 s.
    timeout_s = 60.0
    default_thresholds = (CHANGE, DARK, BRIGHT, SHARPNESS, SHIFT, MISSING)

    def configure(self, **params: Any) -> None:
        if unknown := set(params) - PARAMS:
            raise ValueError(f"camera_image check: unknown parameter(s) {', '.join(sorted(unknown))}")
        url = params.get("url", self.target)
        if not isinstance(url, str) or not url.strip():
            raise ValueError("camera_image check: url must be a URL string")
        self.url = url.strip()
        parts = urlsplit(self.url)
        try:
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise ValueError(f"camera_image check: {self.where_of(parts)} has a bad port") from None
        if parts.scheme not in STREAM_SCHEMES or not parts.hostname:
            where = "url" if "url" in params else f"target {self.target!r}"
            raise ValueError(f"camera_image check: {where} is not an rtsp(s):// or http(s):// URL with a host")
        self.where = self.where_of(parts)
        default_source = "snapshot" if parts.scheme in ("http", "https") else "stream"
        self.source = params.get("source", default_source)
        if self.source not in ("stream", "snapshot"):
            raise ValueError("camera_image check: source must be 'stream' or 'snapshot'")
        if self.source == "snapshot" and parts.scheme not in ("http", "https"):
            raise ValueError("camera_image check: a snapshot source needs an http(s):// URL")
        self.frames = int(_number(params, "frames", 5, 1, 60, integer=True))
        self.seconds = _number(params, "seconds", 4.0, 0, 20)
        self.wait_s = _number(params, "timeout_s", 5.0, 0.1, 10)
        self.width = int(_number(params, "width", 320, 64, 1920, integer=True))
        self.learn_rounds = int(_number(params, "learn_rounds", 3, 1, 100, integer=True))
        self.transport = params.get("transport", "tcp")
        if self.transport not in ("tcp", "udp"):
            raise ValueError("camera_image check: transport must be 'tcp' or 'udp'")
        reference = params.get("reference")
        if reference is not None and (not isinstance(reference, str) or not reference.endswith(".npy")):
            raise ValueError("camera_image check: reference must be a path ending in .npy")
        self.reference_path: Path | None = Path(reference) if reference else None
        relearn = params.get("relearn", False)
        if not isinstance(relearn, bool):
            raise ValueError("camera_image check: relearn must be true or false")
        self._relearn = relearn
        self._learned: Learned | None = None  # loaded on the first round

    @staticmethod
    def where_of(parts: SplitResult) -> str:
        """The URL as shown in results: no user, password or query (snapshot URLs put tokens there)."""
        host = parts.hostname or "?"
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    # -- a round ----------------------------------------------------------------------------------

    def run(self, ctx: CheckContext, /) -> CheckResult:
        start = time.perf_counter()
        try:
            grabbed = list(self._grab())
        except Unreachable as exc:
            return self.result(ctx, Status.CRITICAL, f"camera {self.where}: {exc}", observed={"frames": 0.0})
        span = grabbed[-1][0] - grabbed[0][0]
        pictures = [picture for _, picture in grabbed]
        path = self._path(ctx)
        learned = self._state(path)
        observed, findings, notes, learned_now = self._judge(pictures, learned, span)
        if learned_now:
            _save(path, learned)
        observed["frames_missing"] = float(self.frames - len(pictures))
        if self._bad("frames_missing", observed):  # the stream broke off or slowed to a trickle
            findings.insert(
                0, f"picture stopped: {len(pictures)} of {self.frames} frames in {time.perf_counter() - start:.1f} s"
            )
        if not findings:
            findings.append(f"picture ok: {len(pictures)} frame(s) in {span:.1f} s")
        return self.judge(ctx, observed, "; ".join(findings + notes))

    def _judge(
        self, pictures: list[Gray], learned: Learned, span: float
    ) -> tuple[dict[str, float], list[str], list[str], bool]:
        """Observed metrics, findings in words, notes on what was (not) judged or learned, and
        whether this round taught `learned` something."""
        observed: dict[str, float] = {"frames": float(len(pictures))}
        findings: list[str] = []
        notes: list[str] = []
        if len(pictures) > 1:
            observed["change_pct"] = round(change_pct(pictures), 4)
        scene = np.median(np.stack(pictures), axis=0).astype(np.float32) if len(pictures) > 1 else pictures[0]
        brightness, dark, bright = exposure(scene)
        observed |= {"brightness": round(brightness, 2), "dark_pct": round(dark, 3), "bright_pct": round(bright, 3)}
        sharp = statistics.median(sharpness(p) for p in pictures)
        observed["sharpness"] = round(sharp, 3)

        frozen = self._bad("change_pct", observed)
        if frozen:
            findings.append(f"frozen: no change over {len(pictures)} frames in {span:.1f} s")
        exposed = ""
        if self._bad("dark_pct", observed) or self._bad("brightness", observed, "below"):
            exposed = "dark"
        elif self._bad("bright_pct", observed) or self._bad("brightness", observed, "above"):
            exposed = "over-exposed"
        if exposed:
            findings.append(f"{exposed}: mean brightness {brightness:.0f}/255")
            notes.append(f"sharpness and view not judged while {exposed}")
            return observed, findings, notes, False

        if learned.reference is not None and learned.reference.shape != scene.shape:
            # The picture's size changed (another stream or `width`): the old usual cannot be compared.
            learned.reference, learned.sharpness, learned.baseline = None, [], None
            notes.append("picture size changed: learning anew")
        if learned.baseline:
            observed["sharpness_ratio"] = round(sharp / learned.baseline, 4)
            if self._bad("sharpness_ratio", observed):
                findings.append(f"blurred: sharpness {observed['sharpness_ratio']:.2f} of its usual")
        moved = False
        if learned.reference is not None:
            dy, dx, match = shift(learned.reference, scene)
            observed["shift_px"] = round(math.hypot(dy, dx), 2)
            observed["scene_match"] = round(match, 4)
            if self._bad("shift_px", observed):
                moved = True
                findings.append(f"scene moved {observed['shift_px']:.0f} px from the reference")
            elif self._bad("scene_match", observed):  # no level by default: a profile may set one
                moved = True
                findings.append(f"scene does not match the reference (match {match:.2f})")

        # Learn only from a picture that is itself fine, so a camera that starts bad is not its own usual.
        if frozen or moved or self._bad("sharpness_ratio", observed):
            return observed, findings, notes, False
        lessons = self._learn(learned, scene, sharp)
        return observed, findings, notes + lessons, bool(lessons)

    def _bad(self, metric: str, observed: Mapping[str, float], direction: str | None = None) -> bool:
        threshold = self.thresholds.get(metric)
        if threshold is None or metric not in observed:
            return False
        if direction is not None and threshold.direction != direction:
            return False
        return threshold.status(observed[metric]) in (Status.WARNING, Status.CRITICAL)

    # -- learning ---------------------------------------------------------------------------------

    def _path(self, ctx: CheckContext) -> Path | None:
        """Where the reference is kept: params.reference, else <data_dir>/camera/<camera>.npy."""
        if self.reference_path is not None:
            return self.reference_path
        if ctx.settings is None:
            return None  # nowhere to keep it: learned on the instance only
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.where.split("://", 1)[-1]).strip("-")[:60]
        return Path(ctx.settings.data_dir) / "camera" / f"{slug}-{digest}.npy"

    def _state(self, path: Path | None) -> Learned:
        if self._relearn:  # params.relearn: this instance's first round starts over
            self._relearn = False
            self._learned = Learned()
            _remove(path)
        elif self._learned is None:
            self._learned = _load(path)
        elif path is not None and not self._learned.empty and not path.exists():
            self._learned = Learned()  # the file was deleted: learn anew
        return self._learned

    def _learn(self, learned: Learned, scene: Gray, sharp: float) -> list[str]:
        notes = []
        if learned.reference is None:
            learned.reference = scene
            notes.append("reference picture learned")
        if learned.baseline is None:
            learned.sharpness.append(sharp)
            if len(learned.sharpness) >= self.learn_rounds:
                learned.baseline = statistics.median(learned.sharpness)
                notes.append(f"usual sharpness learned ({learned.baseline:.0f})")
            else:
                notes.append(f"learning sharpness ({len(learned.sharpness)} of {self.learn_rounds} rounds)")
        return notes

    # -- grabbing ---------------------------------------------------------------------------------

    def _grab(self) -> Iterator[tuple[float, Gray]]:
        """(when, grayscale picture) for up to `frames` frames spread over `seconds`; at least one, or
        Unreachable. Paced by time.perf_counter, not the injected Clock: the pace is the camera's,
        in real time, as the network checks time their round trips."""
        start = time.perf_counter()
        grabbed = self._snapshots() if self.source == "snapshot" else self._stream()
        count = 0
        for item in grabbed:
            count += 1
            yield item
        if not count:
            raise Unreachable(f"no picture in {time.perf_counter() - start:.1f} s")

    def _interval(self) -> float:
        return self.seconds / (self.frames - 1) if self.frames > 1 else 0.0

    def _stream(self) -> Iterator[tuple[float, Gray]]:
        import av

        options = {"timeout": str(int(self.wait_s * 1_000_000)), "protocol_whitelist": PROTOCOLS}
        if urlsplit(self.url).scheme.startswith("rtsp"):
            options["rtsp_transport"] = self.transport
        opened = time.perf_counter()
        try:
            container = av.open(self.url, options=options, timeout=(self.wait_s, self.wait_s))
        except (av.FFmpegError, OSError) as exc:
            raise Unreachable(self._why(exc, opened)) from None
        deadline = time.perf_counter() + self.seconds + self.wait_s
        kept = 0
        first = next_at = 0.0
        try:
            if not container.streams.video:
                raise Unreachable("no video in the stream")
            stream = container.streams.video[0]
            keyed = False
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    continue  # a damaged packet (lost RTP over UDP): the next key frame mends it
                for frame in frames:
                    # Before the first key frame a decoder shows grey guesswork, not the camera's picture.
                    keyed = keyed or frame.key_frame
                    now = time.perf_counter()
                    if not keyed or frame.is_corrupt or now < next_at:
                        continue
                    if not kept:
                        first = now
                    yield now, self._gray(frame)
                    kept += 1
                    next_at = first + kept * self._interval()
                    if kept >= self.frames:
                        return
                if time.perf_counter() > deadline:
                    return
        except (av.FFmpegError, OSError) as exc:
            if not kept:
                raise Unreachable(self._why(exc, opened)) from None
            return  # broke off: judge what came; the summary says how many frames that was
        finally:
            container.close()

    def _snapshots(self) -> Iterator[tuple[float, Gray]]:
        start = time.perf_counter()
        deadline = start + self.seconds + 2 * self.wait_s
        with httpx.Client(follow_redirects=False) as client:
            for k in range(self.frames):
                pause = start + k * self._interval() - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                left = deadline - time.perf_counter()
                if left <= 0:
                    return
                yield time.perf_counter(), self._gray(_decode(self._fetch(client, deadline)))

    def _fetch(self, client: httpx.Client, deadline: float) -> bytes:
        wait_s = max(0.05, min(self.wait_s, deadline - time.perf_counter()))
        try:
            with client.stream("GET", self.url, timeout=wait_s) as response:
                if response.status_code != 200:
                    raise Unreachable(f"snapshot answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_SNAPSHOT_BYTES:
                        raise Unreachable(f"snapshot larger than {MAX_SNAPSHOT_BYTES // 2**20} MiB")
                    if time.perf_counter() > deadline:  # each read is bounded by the timeout, a trickle is not
                        raise Unreachable(f"snapshot still coming after {self.seconds + 2 * self.wait_s:g} s")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise Unreachable(f"unreachable ({type(exc).__name__})") from None

    def _gray(self, frame: av.video.frame.VideoFrame) -> Gray:
        """Grayscale, at most `width` pixels wide: the judgments need shapes and light, not colour
        or detail, and a small picture keeps a round cheap."""
        width = min(self.width, frame.width)
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        return np.asarray(frame.reformat(width=width, height=height, format="gray").to_ndarray(), dtype=np.float32)

    def _why(self, exc: Exception, since: float) -> str:
        if time.perf_counter() - since >= self.wait_s * 0.9:
            return f"unreachable (no answer in {self.wait_s:g} s)"
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return f"unreachable ({reason})"


# -- judging pictures -----------------------------------------------------------------------------


def change_pct(pictures: Sequence[Gray]) -> float:
    """The largest mean absolute change between consecutive pictures, in % of full scale: 0 when a
    stuck camera repeats one picture exactly; a live one's sensor noise and encoder keep it above 0."""
    return max(float(np.mean(np.abs(b - a))) for a, b in itertools.pairwise(pictures)) / 255 * 100


def exposure(picture: Gray) -> tuple[float, float, float]:
    """Mean brightness (0..255), and the % of pixels near black and near white."""
    size = picture.size
    return (
        float(picture.mean()),
        float(np.count_nonzero(picture <= DARK_LEVEL)) / size * 100,
        float(np.count_nonzero(picture >= BRIGHT_LEVEL)) / size * 100,
    )


def sharpness(picture: Gray) -> float:
    """The variance of the Laplacian: edges make it large, blur and fog make it small. It depends on
    the scene, which is why it is judged against the same camera's usual, not a fixed level."""
    inner = picture[1:-1, 1:-1]
    laplacian = picture[:-2, 1:-1] + picture[2:, 1:-1] + picture[1:-1, :-2] + picture[1:-1, 2:] - 4 * inner
    return float(laplacian.var())


def shift(reference: Gray, picture: Gray) -> tuple[float, float, float]:
    """How far `picture` is moved from `reference` (dy, dx in pixels, by phase correlation), and how
    well the two match once aligned (normalized cross-correlation, 1 = the same scene).

    Both are weighed towards coarse detail (a Gaussian of SMOOTH_PX): a blurred picture has only
    noise in its finest detail, and plain phase correlation then finds a few pixels of shift."""
    h, w = reference.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    low_pass = np.exp(-2 * (np.pi * SMOOTH_PX) ** 2 * (np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w) ** 2))
    a = np.fft.fft2((reference - reference.mean()) * window)
    b = np.fft.fft2((picture - picture.mean()) * window)
    cross = b * np.conj(a)
    cross *= low_pass / np.maximum(np.abs(cross), 1e-9)
    peak = np.unravel_index(int(np.argmax(np.abs(np.fft.ifft2(cross)))), reference.shape)
    dy, dx = (int(p) - n if p > n // 2 else int(p) for p, n in zip(peak, reference.shape, strict=True))
    smooth = [np.real(np.fft.ifft2(np.fft.fft2(p) * low_pass)) for p in (reference, picture)]
    return float(dy), float(dx), _match(smooth[0], smooth[1], dy, dx)


def _match(reference: NDArray[Any], picture: NDArray[Any], dy: int, dx: int) -> float:
    h, w = reference.shape
    if abs(dy) >= h // 2 or abs(dx) >= w // 2:
        return 0.0
    ref = reference[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    cur = picture[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    ref, cur = ref - ref.mean(), cur - cur.mean()
    norm = math.sqrt(float((ref * ref).sum()) * float((cur * cur).sum()))
    return float((ref * cur).sum()) / norm if norm else 0.0


def _decode(data: bytes) -> av.video.frame.VideoFrame:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            for frame in container.decode(video=0):
                return frame
    except (av.FFmpegError, IndexError):
        pass
    raise Unreachable("snapshot is not a JPEG or PNG picture")


# -- the reference file: <name>.npy (the picture) and <name>.json (the usual sharpness) ---------------


def _load(path: Path | None) -> Learned:
    if path is None or not path.exists():
        return Learned()
    try:
        reference = np.load(path, allow_pickle=False).astype(np.float32)
        saved = json.loads(path.with_suffix(".json").read_text())
        samples = [float(s) for s in saved.get("sharpness", [])]
        baseline = saved.get("baseline")
    except (OSError, ValueError, TypeError, AttributeError):
        return Learned()  # unreadable: learned anew and overwritten
    return Learned(reference, samples, float(baseline) if baseline else None)


def _save(path: Path | None, learned: Learned) -> None:
    if path is None or learned.reference is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"sharpness": learned.sharpness, "baseline": learned.baseline}
    for target, write in (
        (path.with_suffix(".json"), lambda fh: fh.write(json.dumps(meta).encode())),
        (path, lambda fh: np.save(fh, learned.reference, allow_pickle=False)),
    ):
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as fh:
            write(fh)
        partial.replace(target)  # a crash mid-write leaves the old file, never half a new one


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)


def _number(
    params: Mapping[str, Any], name: str, default: float, low: float, high: float, *, integer: bool = False
) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"camera_image check: {name} must be a number")
    if integer and value != int(value):
        raise ValueError(f"camera_image check: {name} must be a whole number")
    if not low <= value <= high:
        raise ValueError(f"camera_image check: {name} must be between {low:g} and {high:g}")
    return float(value)
