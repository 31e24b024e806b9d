"""Support for tracking tests and benchmarks: lossless synthetic videos and a detector that
returns the generator's ground truth.

`SyntheticGroundTruthDetector` is NOT a model and never stands in for one: it exists only for
tracker-level tests, where the question is what Norfair and the metrics do with known boxes.
It recognises each frame of a losslessly written synthetic video by its exact pixels and
returns that frame's true boxes, optionally jittered (seeded) and without the animals that are
mostly hidden (as a real detector misses them). Model behaviour is tested with real models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cowdemo.datasets.synthetic import CLASSES, SyntheticVideo
from cowdemo.detections import Detections
from cowdemo.models.base import Detector


def write_lossless(path: Path, video: SyntheticVideo) -> Path:
    """The clip as FFV1 (lossless RGB) in Matroska: decoding gives back its exact
    pixels, so frames can be recognised by content."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=int(video.fps))
        stream.width, stream.height = video.size
        stream.pix_fmt = "bgr0"
        for image in video.frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def frame_digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class SyntheticGroundTruthDetector(Detector):
    """Returns the generator's true boxes for frames of ``video`` (see the module docstring).

    Args:
        video: the clip whose frames it recognises.
        jitter: standard deviation in pixels of the seeded noise added to box corners.
        min_visible: animals with a smaller visible share are not reported (0 reports all).
        seed: noise seed; the noise of a frame depends only on (seed, frame index).
    """

    classes = CLASSES

    def __init__(
        self, video: SyntheticVideo, jitter: float = 0.0, min_visible: float = 0.0, seed: int = 0
    ):
        self.name = "synthetic-ground-truth"
        self.video = video
        self.jitter = jitter
        self.min_visible = min_visible
        self.seed = seed
        self.frames_seen = 0
        self.index = {frame_digest(image): i for i, image in enumerate(video.frames)}
        self.cache_identity = f"gt|{jitter}|{min_visible}|{seed}|{len(video)}"

    def frame_index(self, image: np.ndarray) -> int:
        try:
            return self.index[frame_digest(image)]
        except KeyError:
            raise AssertionError("not a frame of the synthetic clip (lossy or resized?)") from None

    def boxes(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(xyxy, true track ids) this detector reports for frame ``index`` (0-based)."""
        rows = self.video.tracks[index]
        seen = self.video.visibility[index]
        keep = [k for k in range(len(rows)) if seen[k] >= self.min_visible]
        xyxy = np.asarray([rows[k][1] for k in keep], np.float64).reshape(-1, 4)
        ids = np.asarray([rows[k][0] for k in keep], np.int64)
        if self.jitter and len(xyxy):
            rng = np.random.default_rng([self.seed, index])
            xyxy = xyxy + rng.normal(0.0, self.jitter, xyxy.shape)
            width, height = self.video.size
            xyxy = np.clip(xyxy, 0, [width, height, width, height])
            xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
        return xyxy, ids

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            self.frames_seen += 1
            xyxy, _ = self.boxes(self.frame_index(image))
            out.append(
                Detections.from_class_ids(xyxy, np.ones(len(xyxy)), np.zeros(len(xyxy)), CLASSES)
            )
        return out


def synthetic_detections(
    video: SyntheticVideo, detector: SyntheticGroundTruthDetector | None = None,
    hidden: dict[int, range] | None = None,
):
    """A :class:`VideoDetections` of ``video`` without a video file: the detector's boxes per
    frame (all true boxes by default), minus the animals ``hidden`` (track id -> frame
    indices), with coat signatures from the frames. For tracker tests that need no decoding."""
    from cowdemo.tracking.appearance import coat_signatures
    from cowdemo.tracking.detection import VideoDetections, VideoMeta

    detector = detector or SyntheticGroundTruthDetector(video)
    hidden = hidden or {}
    detections, signatures = [], []
    for index, image in enumerate(video.frames):
        xyxy, ids = detector.boxes(index)
        keep = np.asarray([index not in hidden.get(int(t), ()) for t in ids], bool)
        xyxy = xyxy[keep]
        detections.append(
            Detections.from_class_ids(xyxy, np.ones(len(xyxy)), np.zeros(len(xyxy)), CLASSES)
        )
        signatures.append(coat_signatures(image, xyxy))
    width, height = video.size
    meta = VideoMeta("synthetic", width, height, video.fps, width, height, 1, len(video))
    numbers = np.arange(1, len(video) + 1)
    return VideoDetections(numbers, (numbers - 1) / video.fps, detections, signatures, meta,
                           detector.name)  # fmt: skip


def ground_truth_of(video: SyntheticVideo):
    """The generator's exact tracks as a :class:`MotSequence` (frames 1-based)."""
    from cowdemo.datasets.synthetic import mot_rows
    from cowdemo.evaluation.tracking import MotSequence

    rows = np.asarray(mot_rows(video), dtype=np.float64).reshape(-1, 6)
    return MotSequence(rows[:, 0], rows[:, 1], rows[:, 2:6], name="synthetic")
