"""The detection pass over a video, and its cache on disk.

The detector runs once per (video content, model, detector settings): its raw boxes (the
model's own score floor, every class) and their coat signatures are stored, so changing the
score threshold, the class filter or any tracker setting re-tracks in well under a second
without running the model again::

    cache = DetectionCache()                       # $COWDEMO_DATA/cache/detections
    found = detect_video("cows.mp4", "frcnn-r50-fpn-coco", VideoSettings(stride=2), cache=cache)
    found.cached, len(found), found.detections[0]  # raw Detections of the first frame

How it is fast: frames are decoded in a background thread, fed to the detector in batches
(one forward pass per batch on a GPU), and on a CPU two batches run at once (model runtimes
release the GIL; ONNX models get one single-threaded session per pass, which uses a small CPU
better than one session spreading each frame over every core). Results are collected in frame
order, so they are the same as a frame-by-frame loop's, and a caller can track and render
while the pass runs (``on_frame``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.files import atomic_write_bytes
from cowdemo.models.base import Detector
from cowdemo.tracking.appearance import EMBEDDING_SIZE, coat_signatures
from cowdemo.tracking.progress import Meter, ProgressCallback, frames_in_background
from cowdemo.tracking.settings import VideoSettings
from cowdemo.video import VideoFrame, VideoReader, VideoSource, file_sha256

#: Bump when the cached content or its meaning changes: old entries are then ignored.
CACHE_FORMAT = 1


# --------------------------------------------------------------------------------------------
# What the pass produces
# --------------------------------------------------------------------------------------------
@dataclass
class VideoMeta:
    """The facts about a video a tracking run needs, cached with its detections.

    ``width``/``height`` are the source frame size (boxes are in these pixels), ``fps`` the
    source rate; ``processed_size`` the size the detector saw; ``decoded`` how many frames
    were decoded; ``notes`` what a user should know (truncated, variable frame rate).
    """

    name: str
    width: int
    height: int
    fps: float
    processed_width: int
    processed_height: int
    stride: int
    decoded: int
    notes: list[str] = field(default_factory=list)

    @property
    def output_fps(self) -> float:
        """Rate of the processed frames: a rendered video plays at this speed."""
        return self.fps / self.stride

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class VideoDetections:
    """Raw detections of every processed frame of a video.

    Attributes:
        frame_numbers: (n,) 1-based frame numbers in the source video (strided frames skipped).
        times: (n,) presentation times in seconds.
        detections: per processed frame, every box above the model's floor, all classes, in
            source-video pixels.
        signatures: per processed frame, (k, 64) coat signatures of those boxes.
        meta: the video's facts.
        model: the model's name; ``key`` the cache key; ``cached`` whether it came from disk.
    """

    frame_numbers: np.ndarray
    times: np.ndarray
    detections: list[Detections]
    signatures: list[np.ndarray]
    meta: VideoMeta
    model: str
    key: str = ""
    cached: bool = False
    duration_s: float = 0.0

    def __len__(self) -> int:
        return len(self.frame_numbers)

    @property
    def num_boxes(self) -> int:
        return sum(len(d) for d in self.detections)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------
def data_dir() -> Path:
    """The app's data folder: $COWDEMO_DATA, default ``data/`` in the repository."""
    default = Path(__file__).resolve().parents[2] / "data"
    return Path(os.environ.get("COWDEMO_DATA") or default)


def cache_key(video_sha256: str, model_identity: str, settings: dict[str, Any]) -> str:
    """sha256 of everything that changes a detection pass's output."""
    payload = {"format": CACHE_FORMAT, "video": video_sha256, "model": model_identity,
               "settings": settings}  # fmt: skip
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class DetectionCache:
    """Detection passes on disk, one ``<key>.npz`` each (numpy arrays, no pickles), written
    atomically (temp file + rename), so a crash never leaves a half-written entry."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder else data_dir() / "cache" / "detections"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> VideoDetections | None:
        """The stored pass, or None (missing or unreadable entries count as missing)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                found = _from_arrays({name: data[name] for name in data.files}, key)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            path.unlink(missing_ok=True)  # damaged: detect again
            return None
        os.utime(path)  # recently used, for pruning
        return found

    def save(self, found: VideoDetections) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, **_to_arrays(found))
        return atomic_write_bytes(self.path(found.key), buffer.getvalue())

    def prune(self, max_bytes: int = 2 << 30) -> int:
        """Delete the least recently used entries beyond ``max_bytes``; returns how many."""
        entries = sorted(self.folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        total, removed = 0, 0
        for path in entries:
            total += path.stat().st_size
            if total > max_bytes:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _to_arrays(found: VideoDetections) -> dict[str, np.ndarray]:
    dets = found.detections
    names = sorted({str(n) for d in dets for n in d.class_names})
    lookup = {n: i for i, n in enumerate(names)}
    merged = Detections.merge(dets) if dets else Detections.empty()
    meta = {"meta": found.meta.to_dict(), "model": found.model, "duration_s": found.duration_s}
    return {
        "frame_numbers": np.asarray(found.frame_numbers, np.int64),
        "times": np.asarray(found.times, np.float64),
        "counts": np.asarray([len(d) for d in dets], np.int64),
        "xyxy": merged.xyxy,
        "scores": merged.scores,
        "class_ids": merged.class_ids,
        "class_index": np.asarray([lookup[str(n)] for n in merged.class_names], np.int32),
        "class_names": np.asarray(names, dtype=str),
        "signatures": (
            np.concatenate(found.signatures).astype(np.float32)
            if found.signatures else np.zeros((0, EMBEDDING_SIZE), np.float32)
        ),
        "info": np.asarray(json.dumps(meta)),
    }  # fmt: skip


def _from_arrays(data: dict[str, np.ndarray], key: str) -> VideoDetections:
    info = json.loads(str(data["info"]))
    bounds = np.concatenate([[0], np.cumsum(data["counts"])])
    names = data["class_names"]
    all_names = names[data["class_index"]] if len(names) else np.zeros(0, str)
    detections, signatures = [], []
    for a, b in itertools.pairwise(bounds):
        detections.append(
            Detections(data["xyxy"][a:b], data["scores"][a:b], data["class_ids"][a:b],
                       all_names[a:b])
        )  # fmt: skip
        signatures.append(data["signatures"][a:b])
    return VideoDetections(
        frame_numbers=data["frame_numbers"],
        times=data["times"],
        detections=detections,
        signatures=signatures,
        meta=VideoMeta(**info["meta"]),
        model=info["model"],
        key=key,
        cached=True,
        duration_s=float(info.get("duration_s", 0.0)),
    )


# --------------------------------------------------------------------------------------------
# Model identity
# --------------------------------------------------------------------------------------------
def model_identity(model: str | Detector, folder: Path | None = None) -> str:
    """What makes a model's output what it is: registry name + weights file + size + mtime
    (a re-trained checkpoint is a new model), or for a loaded detector its class, name and
    file. A detector may set ``cache_identity`` to say it exactly."""
    if isinstance(model, Detector):
        explicit = getattr(model, "cache_identity", None)
        if explicit:
            return str(explicit)
        path = getattr(model, "path", None)
        return f"{type(model).__qualname__}|{model.name}|{_file_stamp(path)}"
    from cowdemo.models.registry import find_model

    spec = find_model(model, folder)
    return f"{spec.kind}|{spec.name}|{_file_stamp(spec.path)}"


def _file_stamp(path: str | os.PathLike | None) -> str:
    if not path:
        return ""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


# --------------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------------
def default_batch_size(device: str) -> int:
    return 8 if str(device).startswith("cuda") else 2


def default_workers(device: str) -> int:
    if str(device).startswith("cuda"):
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def worker_detectors(detector: Detector, workers: int) -> list[Detector]:
    """One detector per concurrent pass. On a CPU, a detector that offers ``with_threads``
    (ONNX models) gets single-threaded copies: frames side by side on separate cores beat one
    frame spread over all of them for small networks, and they never fight over cores."""
    if workers > 1 and not detector.device.startswith("cuda") and hasattr(detector,
                                                                          "with_threads"):
        threads = max(1, (os.cpu_count() or 1) // workers)
        # Kept on the detector: two new ONNX sessions per video cost ~30 ms (measured).
        copies = detector.__dict__.setdefault("_worker_copies", {})
        key = (threads, workers)
        if key not in copies:
            copies[key] = [detector.with_threads(threads) for _ in range(workers)]
        return copies[key]
    return [detector] * workers


def _detect_batch(
    pool: Queue, frames: list[VideoFrame], scale: tuple[float, float]
) -> tuple[list[VideoFrame], list[tuple[Detections, np.ndarray]]]:
    """Detect in one batch with a free detector of ``pool``; boxes back to source pixels,
    with coat signatures."""
    detector = pool.get()
    try:
        results = detector.predict_batch([f.image for f in frames])
    finally:
        pool.put(detector)
    if len(results) != len(frames):
        raise CowdemoError(
            f"Model {detector.name} returned {len(results)} results for {len(frames)} frames."
        )
    sx, sy = scale
    out = []
    for frame, dets in zip(frames, results):
        signatures = coat_signatures(frame.image, dets.xyxy)
        if (sx, sy) != (1.0, 1.0):
            dets = Detections(dets.xyxy / [sx, sy, sx, sy], dets.scores, dets.class_ids,
                              dets.class_names)  # fmt: skip
        out.append((dets, signatures))
    return frames, out


def detect_video(
    source: VideoSource,
    model: str | Detector,
    settings: VideoSettings | None = None,
    *,
    cache: DetectionCache | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    video_sha256: str | None = None,
    identity: str | None = None,
    loaded: Detector | Callable[[], Detector] | None = None,
    on_frame: Callable[[VideoFrame, Detections, np.ndarray, VideoMeta], None] | None = None,
) -> VideoDetections:
    """Run ``model`` on every processed frame of ``source`` (a path or the file's bytes),
    or return the cached pass for the same video content, model and settings.

    Args:
        model: a registry name or path (loaded on ``device`` only when not cached), or a
            loaded :class:`Detector`.
        settings: stride, maximum resolution and maximum frames (defaults: all frames, longer
            side at most 1280).
        cache: where passes are stored (None: no caching).
        batch_size, workers: frames per forward pass and passes run at once (defaults: 8 and 1
            on a GPU, 2 and 2 on a CPU). They do not change the results, so they are not part
            of the cache key.
        progress: called with a :class:`Progress` as frames are done.
        video_sha256, identity: precomputed video hash and model identity.
        loaded: the registry model ``model`` already loaded, or a function loading it (called
            only when the pass is not cached), e.g. to share a server's model cache.
        on_frame: called in frame order, as detections come in, with each frame, its raw
            detections (source pixels), their signatures and the video's facts (not called
            when the pass comes from the cache): lets a caller track and render in this pass.
    """
    settings = settings or VideoSettings()
    from cowdemo.devices import resolve_device

    detector: Detector | None = model if isinstance(model, Detector) else None
    if detector is None and isinstance(loaded, Detector):
        detector = loaded
    device = detector.device if detector is not None else resolve_device(device)
    if video_sha256 is None:
        video_sha256 = (
            hashlib.sha256(bytes(source)).hexdigest()
            if isinstance(source, (bytes, bytearray, memoryview))
            else file_sha256(source)
        )
    identity = identity or model_identity(detector if isinstance(model, Detector) else model)
    key_settings = {**settings.to_dict(), "device": "cuda" if device.startswith("cuda") else "cpu"}
    key = cache_key(video_sha256, identity, key_settings)
    if cache is not None and (hit := cache.load(key)) is not None:
        return hit

    reader = VideoReader(source, settings.stride, settings.max_side, settings.max_frames, name)
    if detector is None and loaded is not None:
        detector = loaded()
    if detector is None:
        from cowdemo.models.registry import load_detector

        detector = load_detector(str(model), device)
    batch_size = batch_size or default_batch_size(detector.device)
    workers = workers or default_workers(detector.device)
    if batch_size < 1 or workers < 1:
        raise CowdemoError(f"Batch size and workers must be at least 1, got {batch_size}, "
                           f"{workers}.")
    out_w, out_h = reader.output_size
    scale = (out_w / reader.info.width, out_h / reader.info.height)
    meter = Meter("Detecting", reader.expected_frames(), progress)
    meter.update(0, final=True)
    start = time.perf_counter()
    numbers: list[int] = []
    times: list[float] = []
    detections: list[Detections] = []
    signatures: list[np.ndarray] = []
    pending: deque[Future] = deque()

    meta = VideoMeta(
        name=reader.info.name,
        width=reader.info.width,
        height=reader.info.height,
        fps=reader.info.fps,
        processed_width=out_w,
        processed_height=out_h,
        stride=settings.stride,
        decoded=0,
    )

    def collect(future: Future) -> None:
        frames, results = future.result()
        for frame, (dets, sig) in zip(frames, results):
            detections.append(dets)
            signatures.append(sig)
            if on_frame is not None:
                on_frame(frame, dets, sig, meta)
        meter.update(len(detections))

    free: Queue = Queue()
    for copy in worker_detectors(detector, workers):
        free.put(copy)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cowdemo-detect") as pool:
        batch: list[VideoFrame] = []
        for frame in frames_in_background(reader, depth=batch_size * (workers + 1)):
            numbers.append(frame.number)
            times.append(frame.time_s)
            batch.append(frame)
            if len(batch) == batch_size:
                pending.append(pool.submit(_detect_batch, free, batch, scale))
                batch = []
                while len(pending) > workers:
                    collect(pending.popleft())
        if batch:
            pending.append(pool.submit(_detect_batch, free, batch, scale))
        while pending:
            collect(pending.popleft())
    meter.update(len(detections), final=True)

    meta.decoded, meta.notes = reader.decoded, list(reader.notes)
    found = VideoDetections(
        frame_numbers=np.asarray(numbers, np.int64),
        times=np.asarray(times, np.float64),
        detections=detections,
        signatures=signatures,
        meta=meta,
        model=detector.name,
        key=key,
        cached=False,
        duration_s=time.perf_counter() - start,
    )
    if cache is not None:
        cache.save(found)
    return found

