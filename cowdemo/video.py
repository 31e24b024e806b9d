"""Videos in and out: decoding with validation, a frame iterator with stride and a resolution
cap, and encoding that browsers play. PyAV (FFmpeg's libraries) does the work::

    info = probe("cows.mp4")                    # VideoInfo, or one clear CowdemoError
    reader = VideoReader("cows.mp4", stride=2, max_side=1280)
    for frame in reader:                        # VideoFrame: 1-based number, time, RGB array
        ...
    reader.notes                                # e.g. "variable frame rate ..." or "truncated ..."
    with VideoWriter("out.mp4", fps=10) as out: # H.264 in MP4 (VP9 in WebM as a fallback)
        out.write(rgb)

Why PyAV and not OpenCV: OpenCV's pip wheel cannot encode H.264 and its default ``mp4v``
(MPEG-4 Part 2) does not play in browsers; PyAV's wheel ships libx264 and libvpx, reads every
container a phone or camera writes (MP4, MOV, AVI, MKV, WebM), gives frame timestamps (so a
variable frame rate can be noticed) and reports decoding errors instead of ending silently.

What counts as bad input, each a :class:`~cowdemo.errors.CowdemoError` with one line: an
empty or non-video file (whatever its name), an image or an audio file, a video whose frames
cannot be decoded (zero frames, or truncated before the first frame), and frames larger than
``COWDEMO_MAX_VIDEO_PIXELS`` (default 8K, 7680x4320). A video that breaks off part way is read
up to the break, with a note saying so; a variable frame rate gives a note, not an error.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np

from cowdemo.errors import CowdemoError

#: Upload types the app offers (decoding goes by content, not by name).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
#: Largest frame accepted, in pixels (width x height). Override with COWDEMO_MAX_VIDEO_PIXELS.
DEFAULT_MAX_VIDEO_PIXELS = 7680 * 4320
#: A frame interval this much longer or shorter than the median marks a variable frame rate.
VFR_TOLERANCE = 0.25
#: Encoders tried in order: (name, PyAV codec, container format, file suffix, MIME type, options).
ENCODERS: tuple[tuple[str, str, str, str, str, dict[str, str]], ...] = (
    ("h264", "libx264", "mp4", ".mp4", "video/mp4", {"preset": "veryfast", "crf": "23"}),
    ("vp9", "libvpx-vp9", "webm", ".webm", "video/webm",
     {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0"}),
)  # fmt: skip

VideoSource = str | os.PathLike | bytes


def _av():
    try:
        import av
    except ImportError:
        raise CowdemoError(
            "Video support needs PyAV: install it with `.venv/bin/pip install av==18.1.0`."
        ) from None
    # PyAV's default log level (None) ignores FFmpeg's logs without a callback. Setting any
    # level installs one that takes the GIL from FFmpeg's own threads, which deadlocks
    # frame-threaded decoding running in a Python thread: leave it alone.
    return av


def max_video_pixels() -> int:
    try:
        return int(os.environ.get("COWDEMO_MAX_VIDEO_PIXELS", DEFAULT_MAX_VIDEO_PIXELS))
    except ValueError:
        return DEFAULT_MAX_VIDEO_PIXELS


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its headers and first frame.

    Attributes:
        name: the file name used in messages.
        container: FFmpeg's container name, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
        codec: the video codec, e.g. "h264".
        width, height: frame size in pixels, as displayed (rotation applied).
        fps: the average frame rate (frames per second).
        frame_count: frames the headers declare (0 when they do not say).
        duration_s: length in seconds (0 when unknown).
        rotation: degrees the frames are turned for display (phone videos), 0 mostly.
    """

    name: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int = 0

    @property
    def estimated_frames(self) -> int:
        """Declared frame count, or duration x fps when the headers do not declare one."""
        if self.frame_count:
            return self.frame_count
        return max(1, round(self.duration_s * self.fps)) if self.duration_s else 0

    def summary(self) -> str:
        frames = f"{self.estimated_frames} frames" if self.estimated_frames else "? frames"
        return (
            f"{self.width}x{self.height}, {self.fps:.2f} fps, {frames}, "
            f"{self.duration_s:.1f} s, {self.codec}"
        )


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: ``number`` is 1-based in the source video (MOTChallenge numbering,
    skipped frames counted), ``time_s`` its presentation time, ``image`` RGB uint8 (h, w, 3)."""

    number: int
    time_s: float
    image: np.ndarray


def _label(source: VideoSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "the upload"
    return Path(source).name


def _open(source: VideoSource, label: str):
    """An open PyAV input container, or a clear error for what cannot be one."""
    av = _av()
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise CowdemoError(f"{label} is empty (0 bytes): upload an MP4, MOV, AVI, MKV or WebM.")
        target: Any = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.exists():
            raise CowdemoError(f"{path}: no such file.")
        if path.is_dir():
            raise CowdemoError(f"{path} is a folder, not a video file.")
        from cowdemo.files import require_regular_file

        require_regular_file(path, "video file")  # a FIFO would block forever
        if path.stat().st_size == 0:
            raise CowdemoError(f"{label} is empty (0 bytes): give an MP4, MOV, AVI, MKV or WebM.")
        target = str(path)
    try:
        container = av.open(target, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise CowdemoError(
            f"{label} is not a video that can be read ({_reason(exc)}): give an MP4, MOV, AVI, "
            "MKV or WebM file; a truncated MP4 lacks its index and cannot be opened."
        ) from None
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in ("image2", "gif", "apng", "webp_pipe"):
        container.close()
        raise CowdemoError(f"{label} is an image ({fmt.split('_')[0]}), not a video.")
    if not container.streams.video:
        kinds = "audio only" if container.streams.audio else "no video track"
        container.close()
        raise CowdemoError(f"{label} has no video frames ({kinds}): give a file with a video.")
    return container


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:120]


def _rotation(frame) -> int:
    try:
        return round(frame.rotation) % 360
    except (AttributeError, TypeError, ValueError):
        return 0


def _check_size(width: int, height: int, label: str) -> None:
    if width <= 0 or height <= 0:
        raise CowdemoError(f"{label} has a video track without a frame size: re-export it.")
    limit = max_video_pixels()
    if width * height > limit:
        raise CowdemoError(
            f"{label} has {width}x{height} frames = {width * height:,} pixels, over the limit of "
            f"{limit:,}: downscale it (e.g. to 1920x1080) or raise COWDEMO_MAX_VIDEO_PIXELS."
        )


def _stream_facts(stream) -> tuple[float, int, float]:
    """(fps, declared frame count, duration in seconds) from a stream's headers."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif stream.container and stream.container.duration:
        duration = stream.container.duration / 1_000_000
    if not 0 < fps <= 1000:
        fps = stream.frames / duration if stream.frames and duration else 25.0
    return fps, int(stream.frames or 0), max(duration, 0.0)


def probe(source: VideoSource, name: str | None = None) -> VideoInfo:
    """Open a video, check it, and decode its first frame; or raise one clear error."""
    label = _label(source, name)
    av = _av()
    container = _open(source, label)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        _check_size(ctx.width, ctx.height, label)
        fps, count, duration = _stream_facts(stream)
        try:
            first = next(container.decode(stream), None)
        except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
            raise CowdemoError(
                f"{label} has a video track whose frames cannot be decoded ({_reason(exc)}): "
                "the file is damaged or truncated; re-export it."
            ) from None
        if first is None:
            raise CowdemoError(f"{label} has no video frames (0 frames decoded).")
        rotation = _rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            name=label,
            container=container.format.name,
            codec=ctx.name,
            width=width,
            height=height,
            fps=fps,
            frame_count=count,
            duration_s=duration,
            rotation=rotation,
        )
    finally:
        container.close()


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk, aspect kept, so the longer side is at most ``max_side``."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass
class VideoReader:
    """Decoded frames of a video, every ``stride``-th one, at most ``max_side`` pixels on the
    longer side, at most ``max_frames`` of them. Iterate it for :class:`VideoFrame` objects.

    After (or during) iteration: ``decoded`` counts every frame decoded (skipped ones too),
    ``timestamps`` holds every decoded frame's time, ``notes`` says what a user should know
    (truncated file, variable frame rate), and ``truncated`` is set when decoding broke off.
    Iterating again decodes again from the start.
    """

    source: VideoSource
    stride: int = 1
    max_side: int | None = None
    max_frames: int | None = None
    name: str | None = None
    info: VideoInfo = field(init=False)
    decoded: int = field(init=False, default=0)
    truncated: bool = field(init=False, default=False)
    timestamps: list[float] = field(init=False, default_factory=list)
    notes: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        check_stride(self.stride)
        check_max_side(self.max_side)
        if self.max_frames is not None and self.max_frames < 1:
            raise CowdemoError(f"Maximum frames must be at least 1, got {self.max_frames}.")
        self.info = probe(self.source, self.name)

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader yields."""
        return scaled_size(self.info.width, self.info.height, self.max_side)

    @property
    def output_fps(self) -> float:
        """The frame rate of the yielded frames (the source rate divided by the stride)."""
        return self.info.fps / self.stride

    @property
    def scale(self) -> float:
        """Yielded pixels per source pixel (1.0 without downscaling)."""
        return self.output_size[0] / self.info.width

    def expected_frames(self) -> int:
        """How many frames iteration should yield, from the headers (0 when unknown)."""
        total = self.info.estimated_frames
        if not total:
            return 0
        count = (total + self.stride - 1) // self.stride
        return min(count, self.max_frames) if self.max_frames else count

    def __iter__(self) -> Iterator[VideoFrame]:
        av = _av()
        label = self.info.name
        self.decoded, self.truncated, self.timestamps, self.notes = 0, False, [], []
        container = _open(self.source, label)
        width, height = self.output_size
        rotation = self.info.rotation
        if rotation in (90, 270):  # decode at the stored (unrotated) size, then turn
            width, height = height, width
        yielded = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame-parallel decoding where the codec allows it
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
                    self._broke_off(exc)
                    break
                index = self.decoded
                self.decoded += 1
                time_s = float(frame.time) if frame.time is not None else index / self.info.fps
                self.timestamps.append(time_s)
                if index % self.stride:
                    continue
                image = frame.to_ndarray(
                    format="rgb24", width=width, height=height, interpolation="AREA"
                )
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=-rotation // 90))
                yield VideoFrame(index + 1, time_s, image)
                yielded += 1
                if self.max_frames and yielded >= self.max_frames:
                    break
        finally:
            container.close()
        if not yielded:
            raise CowdemoError(f"{label} has no video frames that can be decoded.")
        self._check_frame_rate()
        self._check_length(yielded)

    def _broke_off(self, exc: BaseException) -> None:
        self.truncated = True
        if not self.decoded:
            raise CowdemoError(
                f"{self.info.name} cannot be decoded ({_reason(exc)}): the file is damaged or "
                "truncated; re-export it."
            )
        self.notes.append(
            f"{self.info.name} breaks off after frame {self.decoded} ({_reason(exc)}): "
            "the file looks truncated; the frames before the break are used."
        )

    def _check_length(self, yielded: int) -> None:
        """Fewer frames than the headers promise (count, or duration x rate): truncated."""
        expected = self.info.estimated_frames
        if self.truncated or self.max_frames or not expected:
            return
        if self.decoded < 0.9 * expected - 1:
            self.truncated = True
            self.notes.append(
                f"{self.info.name} should hold about {expected} frames but only {self.decoded} "
                "could be decoded: the file looks truncated; the frames decoded are used."
            )

    def _check_frame_rate(self) -> None:
        stamps = np.asarray(self.timestamps, dtype=np.float64)
        if len(stamps) < 3:
            return
        steps = np.diff(stamps)
        steps = steps[steps > 0]
        if not len(steps):
            return
        median = float(np.median(steps))
        if np.any(np.abs(steps - median) > VFR_TOLERANCE * median):
            low, high = 1 / steps.max(), 1 / steps.min()
            self.notes.append(
                f"{self.info.name} has a variable frame rate ({low:.1f} to {high:.1f} fps): "
                "frames are tracked in order, and the output video plays at the average "
                f"{self.info.fps:.2f} fps, so its timing may differ slightly from the original."
            )


def frame_at(
    source: VideoSource, time_s: float, max_side: int | None = None, name: str | None = None
) -> np.ndarray:
    """The RGB frame shown at ``time_s`` seconds (the first frame at or after it), found by
    seeking to the key frame before it and decoding forward: fast anywhere in a long video."""
    av = _av()
    info = probe(source, name)
    width, height = scaled_size(info.width, info.height, max_side)
    if info.rotation in (90, 270):
        width, height = height, width
    container = _open(source, info.name)
    try:
        stream = container.streams.video[0]
        if time_s > 0 and stream.time_base:
            with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                container.seek(int(time_s / stream.time_base), stream=stream, backward=True)
        found = None
        half_frame = 0.5 / max(info.fps, 1e-6)
        try:
            for frame in container.decode(stream):
                found = frame
                if frame.time is None or frame.time >= time_s - half_frame:
                    break
        except (av.error.FFmpegError, OSError, ValueError, EOFError):
            pass  # a truncated tail: the last frame decoded is the answer
        if found is None:
            raise CowdemoError(f"{info.name} has no frame at {time_s:.2f} s.")
        image = found.to_ndarray(format="rgb24", width=width, height=height,
                                 interpolation="AREA")  # fmt: skip
    finally:
        container.close()
    if info.rotation:
        image = np.ascontiguousarray(np.rot90(image, k=-info.rotation // 90))
    return image


def check_stride(stride: object) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not (
        1 <= stride <= 1000
    ):
        raise CowdemoError(f"Frame stride must be a whole number from 1 to 1000, got {stride!r}.")
    return int(stride)


def check_max_side(max_side: object) -> int | None:
    if max_side in (None, 0):
        return None
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or not (
        32 <= max_side <= 16384
    ):
        raise CowdemoError(
            f"Maximum resolution must be a side length from 32 to 16384 pixels, got {max_side!r}."
        )
    return int(max_side)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------
def available_encoders() -> list[str]:
    """Names of :data:`ENCODERS` this PyAV build can use, best first ("h264", "vp9")."""
    av = _av()
    names = []
    for name, codec, *_ in ENCODERS:
        try:
            av.codec.Codec(codec, "w")
        except (av.error.FFmpegError, ValueError, LookupError):  # UnknownCodecError
            continue
        names.append(name)
    return names


def _encoder(codec: str | None):
    usable = available_encoders()
    if not usable:
        raise CowdemoError(
            "This PyAV build has neither libx264 nor libvpx-vp9: install the PyPI wheel, "
            "`.venv/bin/pip install av==18.1.0`."
        )
    if codec is None:
        codec = usable[0]
    if codec not in usable:
        raise CowdemoError(f"Encoder {codec!r} is not available here: use one of {usable}.")
    return next(e for e in ENCODERS if e[0] == codec)


def output_suffix(codec: str | None = None) -> str:
    """The file suffix (".mp4" or ".webm") :class:`VideoWriter` writes for ``codec``."""
    return _encoder(codec)[3]


def output_mime(codec: str | None = None) -> str:
    return _encoder(codec)[4]


class VideoWriter:
    """Write RGB frames as a video that browsers play: H.264 (yuv420p, ``+faststart``) in MP4,
    or VP9 in WebM where libx264 is missing. Frames are written by a background thread, so
    encoding overlaps whatever produces the frames.

    The file appears under ``path`` only when :meth:`close` succeeds (temp file + rename);
    ``path``'s suffix is replaced by the container's (``.mp4``/``.webm``). Odd frame sizes are
    padded by one pixel (the encoders need even sizes)::

        with VideoWriter("tracks.mp4", fps=25) as out:
            for rgb in frames:
                out.write(rgb)
        out.path   # the finished file
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str | None = None):
        av = _av()
        name, codec_name, fmt, suffix, self.mime, options = _encoder(codec)
        self.codec = name
        self.path = Path(path).with_suffix(suffix)
        if not 0 < fps <= 1000:
            raise CowdemoError(f"Output frame rate must be between 0 and 1000, got {fps}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=suffix
        )
        os.close(handle)
        self._temp = Path(temp)
        self._container = av.open(
            str(self._temp), mode="w", format=fmt,
            options={"movflags": "+faststart"} if fmt == "mp4" else {},
        )  # fmt: skip
        rate = Fraction(fps).limit_denominator(1001)
        self._time_base = 1 / rate  # one tick per frame: frame n is shown at n / fps
        self._stream = self._container.add_stream(codec_name, rate=rate, options=dict(options))
        self._stream.pix_fmt = "yuv420p"
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self._queue: Queue = Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._encode_loop, daemon=True)
        self._thread.start()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, image: np.ndarray) -> None:
        """Queue one RGB uint8 (h, w, 3) frame; every frame must have the first one's size."""
        if self._error is not None:
            raise self._error
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("frames must be RGB uint8 arrays of shape (h, w, 3)")
        size = image.shape[1], image.shape[0]
        if self._size is None:
            self._size = size
            self._stream.width = size[0] + size[0] % 2
            self._stream.height = size[1] + size[1] % 2
        elif size != self._size:
            raise CowdemoError(
                f"Frame {self.frames + 1} is {size[0]}x{size[1]}, the video is "
                f"{self._size[0]}x{self._size[1]}: every frame must have the same size."
            )
        self._queue.put(image)
        self.frames += 1

    def _encode_loop(self) -> None:
        av = _av()
        encoded = 0
        try:
            while (image := self._queue.get()) is not None:
                if self._error is not None:
                    continue  # drain
                h, w = image.shape[:2]
                if w % 2 or h % 2:
                    image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = encoded, self._time_base
                encoded += 1
                self._container.mux(self._stream.encode(frame))
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def close(self) -> Path:
        """Finish the file and move it into place; returns the path."""
        self._queue.put(None)
        self._thread.join()
        try:
            if self._error is not None:
                raise self._error
            if not self.frames:
                raise CowdemoError("No frames were written: the output video would be empty.")
            self._container.mux(self._stream.encode(None))
            self._container.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and delete the unfinished file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        with contextlib.suppress(Exception):  # the file is being discarded anyway
            self._container.close()
        self._temp.unlink(missing_ok=True)


def write_video(
    path: str | os.PathLike, frames, fps: float, codec: str | None = None
) -> Path:
    """Encode an iterable of RGB frames with :class:`VideoWriter`; returns the finished path."""
    with VideoWriter(path, fps, codec) as out:
        for image in frames:
            out.write(image)
    return out.path


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (videos can be large)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
