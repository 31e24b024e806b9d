"""Synthetic cows: seeded scenes and short videos with exact boxes and track ids.

This is the app's offline sample data and the fixture of the test suite. Everything is drawn
with numpy and OpenCV from a seed, so the same seed gives the same pixels on every machine::

    scene = make_scene(seed=7)                  # one 640x480 RGB image with 1-4 cows
    dets = scene.detections()                   # ground truth as Detections (scores 1.0)
    make_dataset("data/synthetic", n_images=8)  # COCO folder: images/*.png + annotations.json
    video = make_video_frames(seed=0)           # 60 frames, 3 cows, two of them cross
    write_video("cows.mp4", video)
    write_mot_gt("gt/gt.txt", video)

What the pictures look like
    A pasture: a sky band with a gradient, a darker tree line on the horizon, and grass with a
    vertical blade texture. Cows are Holstein-like (white body with black or brown patches,
    head with a pink muzzle, dark ears, four legs with dark hooves, tail, udder) and cast a soft
    shadow. Cows further up the image (closer to the horizon) are drawn smaller, so one scene
    holds varied sizes, and animals nearer the camera (lower feet) are drawn on top of those
    behind them, giving partial occlusions.

Colours
    Every cow colour has red >= green (white, black, brown, pink, dark grey) and every
    background colour has green > red by a clear margin (grass, shadowed grass, trees, sky); the
    sensor noise is the same in all channels, so this holds pixel by pixel in the output. Cows
    are therefore easy to learn for a detector, and tests can find a cow's pixels by colour alone.

What a box is
    The box of an animal is the exact pixel extent of its *full* silhouette, including the parts
    hidden behind other animals (amodal, like a human annotator who sees the whole cow),
    clipped to the image. Only the shadow is left out. Boxes use pixel-edge coordinates: an
    animal covering columns 10..19 has ``x1 = 10`` and ``x2 = 20``, so ``x2 - x1`` is its width
    in pixels and COCO ``bbox`` widths and areas come out as whole numbers. ``masks`` holds
    each full silhouette and ``visible_masks`` the part that is actually seen.

Track ids
    Animals are numbered from 1 (the MOTChallenge convention) in the order they were created;
    in a video an animal keeps its id in every frame.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.files import atomic_write_bytes
from cowdemo.images import encode_png

CLASSES: tuple[str, ...] = ("cow",)
COCO_CATEGORIES: list[dict[str, object]] = [{"id": 1, "name": "cow", "supercategory": "animal"}]

MIN_SIDE = 32
MAX_SIDE = 4096
MAX_ANIMALS = 20
MAX_FRAMES = 10_000

Box = tuple[float, float, float, float]

# Label values of a rendered cow; 0 is "no cow". Colours are looked up per animal.
_COAT, _PATCH, _PINK, _HOOF, _DARK, _SHADOW = 1, 2, 3, 4, 5, 6


def _px(value: float) -> int:
    """Nearest pixel index (halves round up, unlike banker's rounding)."""
    return math.floor(value + 0.5)


# --- public data ----------------------------------------------------------------------------
@dataclass
class SyntheticImage:
    """One synthetic scene and its exact ground truth.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        boxes: (n, 4) float64 xyxy boxes: full silhouette extent clipped to the image (see the
            module docstring), in pixel-edge coordinates.
        class_names: n class names (always ``"cow"``).
        track_ids: (n,) int64 ids, 1..n in creation order.
        masks: (n, H, W) bool full silhouettes (hidden parts included), clipped to the image.
        visible_masks: (n, H, W) bool parts of each silhouette that are not covered by an
            animal drawn in front of it.
    """

    image: np.ndarray
    boxes: np.ndarray
    class_names: list[str]
    track_ids: np.ndarray
    masks: np.ndarray = field(repr=False)
    visible_masks: np.ndarray = field(repr=False)

    @property
    def visible_fraction(self) -> np.ndarray:
        """(n,) share of each silhouette that is visible, 1.0 for an unoccluded animal."""
        full = self.masks.sum(axis=(1, 2))
        seen = self.visible_masks.sum(axis=(1, 2))
        return seen / np.maximum(full, 1)

    def detections(self) -> Detections:
        """The ground truth as :class:`~cowdemo.detections.Detections` (scores 1.0, track ids)."""
        ids = [CLASSES.index(name) for name in self.class_names]
        return Detections.from_class_ids(
            self.boxes, np.ones(len(self.boxes)), ids, CLASSES, self.track_ids
        )


@dataclass
class SyntheticVideo:
    """A short clip of walking and grazing cows with per-frame ground truth.

    Attributes:
        frames: the RGB frames, each (H, W, 3) uint8.
        tracks: per frame, a list of ``(track_id, (x1, y1, x2, y2))`` for every animal in view
            (same box convention as :class:`SyntheticImage`).
        visibility: per frame, the visible share of each animal, parallel to ``tracks``.
        crossing_pair: the two track ids that walk past each other, or None.
        fps: the intended playback rate, used by :func:`write_video` by default.
    """

    frames: list[np.ndarray]
    tracks: list[list[tuple[int, Box]]]
    visibility: list[list[float]] = field(default_factory=list)
    crossing_pair: tuple[int, int] | None = None
    fps: float = 10.0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        height, width = self.frames[0].shape[:2]
        return width, height

    @property
    def track_ids(self) -> list[int]:
        """All track ids that appear in the clip, sorted."""
        return sorted({tid for frame in self.tracks for tid, _ in frame})

    def detections(self, frame_index: int) -> Detections:
        """Ground truth of one frame (0-based) as Detections with track ids."""
        rows = self.tracks[frame_index]
        boxes = np.asarray([box for _, box in rows], dtype=np.float64).reshape(-1, 4)
        return Detections.from_class_ids(
            boxes,
            np.ones(len(rows)),
            np.zeros(len(rows), np.int64),
            CLASSES,
            np.asarray([tid for tid, _ in rows], dtype=np.int64),
        )


# --- validation -----------------------------------------------------------------------------
def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CowdemoError(f"{name} must be a whole number, got {value!r}.")
    if not low <= int(value) <= high:
        raise CowdemoError(f"{name} must be between {low} and {high}, got {value}.")
    return int(value)


def _check_size(width: object, height: object) -> tuple[int, int]:
    return (
        _check_int("width", width, MIN_SIDE, MAX_SIDE),
        _check_int("height", height, MIN_SIDE, MAX_SIDE),
    )


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CowdemoError(f"seed must be a non-negative whole number, got {seed!r}.")
    return int(seed)


def _animal_range(n_animals: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(n_animals, (tuple, list)):
        if len(n_animals) != 2:
            raise CowdemoError(
                f"n_animals must be a number or a (min, max) pair, got {n_animals!r}."
            )
        low = _check_int("n_animals minimum", n_animals[0], 0, MAX_ANIMALS)
        high = _check_int("n_animals maximum", n_animals[1], 0, MAX_ANIMALS)
        if low > high:
            raise CowdemoError(f"n_animals range {n_animals!r} has its minimum above its maximum.")
        return low, high
    count = _check_int("n_animals", n_animals, 0, MAX_ANIMALS)
    return count, count


def scene_seed(seed: int, index: int) -> int:
    """The seed :func:`make_dataset` uses for image ``index`` of a dataset made with ``seed``.

    Derived with numpy's SeedSequence so datasets with neighbouring seeds share no images.
    """
    state = np.random.SeedSequence([_check_seed(seed), int(index)]).generate_state(1)
    return int(state[0])


# --- background -----------------------------------------------------------------------------
def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: tuple[int, int]
) -> np.ndarray:
    """Noise in [-1, 1] with features about ``cell`` (rows, cols) pixels large."""
    small = rng.uniform(-1, 1, (max(2, height // cell[0] + 2), max(2, width // cell[1] + 2)))
    return cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, int]:
    """Sky, tree line and textured grass; returns the float32 image and the horizon row."""
    horizon = _px(height * rng.uniform(0.18, 0.30))
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]

    sky_top = np.array([70, 130, 205], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    sky_low = np.array([175, 205, 235], np.float32) + rng.uniform(-10, 10, 3).astype(np.float32)
    t = np.clip(rows / max(horizon, 1), 0, 1)[..., None]
    image = np.broadcast_to(sky_top * (1 - t) + sky_low * t, (height, width, 3)).copy()

    grass = np.array([70, 140, 45], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    patches = _smooth_noise(rng, height, width, (max(8, height // 5), max(8, width // 6)))
    blades = _smooth_noise(rng, height, width, (6, 1))
    depth = np.clip((rows - horizon) / max(height - horizon, 1), 0, 1)  # 0 far, 1 near
    light = 0.85 + 0.15 * depth + 0.10 * patches + 0.10 * blades * (0.3 + 0.7 * depth)
    field_rgb = grass[None, None, :] * light[..., None]
    field_rgb[..., 0] += 8 * patches  # dry, yellowish patches
    image[horizon:] = field_rgb[horizon:]

    # Tree line: a dark green band above the horizon with a wavy top edge.
    phase = rng.uniform(0, 2 * np.pi, 3)
    wave = (
        np.sin(cols / width * 2 * np.pi * 1.5 + phase[0]) * 0.5
        + np.sin(cols / width * 2 * np.pi * 5 + phase[1]) * 0.3
        + np.sin(cols / width * 2 * np.pi * 13 + phase[2]) * 0.2
    )
    band = height * rng.uniform(0.03, 0.06)
    top = horizon - band * (1.2 + wave)
    trees = (rows >= top) & (rows < horizon)
    tree_rgb = np.array([35, 75, 35], np.float32) * (0.9 + 0.2 * blades[..., None])
    image = np.where(trees[..., None], tree_rgb, image)
    return image, horizon


# --- one cow --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CowLook:
    """An animal's appearance, in units of its body length so it can be drawn at any size."""

    coat: tuple[float, float, float]
    patch: tuple[float, float, float]
    patches: tuple[tuple[float, float, float, float, float], ...]  # x, y, ax, ay, angle
    head_x: float
    head_y: float
    head_angle: float
    has_udder: bool
    stance: float  # how far the legs are spread


def _random_look(rng: np.random.Generator) -> _CowLook:
    white = rng.uniform(228, 252)
    coat = (white, white - rng.uniform(0, 10), white - rng.uniform(2, 18))
    brown = rng.random() < 0.25
    patch = (
        (rng.uniform(95, 125), rng.uniform(50, 70), rng.uniform(25, 40))
        if brown
        else (rng.uniform(18, 35),) * 3
    )
    n_patches = int(rng.integers(3, 8))
    patches = tuple(
        (
            float(rng.uniform(-0.45, 0.40)),
            float(rng.uniform(-0.22, 0.18)),
            float(rng.uniform(0.06, 0.17)),
            float(rng.uniform(0.05, 0.12)),
            float(rng.uniform(0, 180)),
        )
        for _ in range(n_patches)
    )
    head_y = float(rng.uniform(-0.22, 0.30))  # above the back .. grazing
    return _CowLook(
        coat=tuple(float(c) for c in coat),
        patch=tuple(float(c) for c in patch),
        patches=patches,
        head_x=0.60 - 0.06 * max(head_y, 0.0),
        head_y=head_y,
        head_angle=float(20 + 60 * max(head_y, 0.0) + rng.uniform(-10, 10)),
        has_udder=bool(rng.random() < 0.7),
        stance=float(rng.uniform(0.9, 1.1)),
    )


# Canvas extent around the body centre, in body lengths (holds every part of any look).
_LEFT, _RIGHT, _TOP, _BOTTOM = -0.62, 0.86, -0.44, 0.52
_LEG_TOP, _LEG_BOTTOM = 0.12, 0.48


def _render_cow(
    look: _CowLook, length: float, facing_right: bool, stride: float
) -> tuple[np.ndarray, int, int]:
    """Draw one cow into a label canvas.

    Returns ``(labels, cx, cy)``: a uint8 (h, w) array of part labels (0 = empty) and the canvas
    pixel of the body centre. ``stride`` is the walk-cycle phase in radians (legs swing).
    """
    L = float(length)
    w = math.ceil((_RIGHT - _LEFT) * L) + 3
    h = math.ceil((_BOTTOM - _TOP) * L) + 3
    cx, cy = _px(-_LEFT * L) + 1, _px(-_TOP * L) + 1
    labels = np.zeros((h, w), np.uint8)

    def pt(x: float, y: float) -> tuple[int, int]:
        return _px(cx + x * L), _px(cy + y * L)

    def axes(ax: float, ay: float) -> tuple[int, int]:
        return max(1, _px(ax * L)), max(1, _px(ay * L))

    # Legs first (the body overlaps their tops), with a swing that alternates diagonal pairs.
    leg_w = max(1.0, 0.075 * L)
    swing = 0.06 * math.sin(stride)
    for x, sign in ((-0.34, 1), (-0.22, -1), (0.22, -1), (0.34, 1)):
        x *= look.stance
        foot = x + sign * swing
        top = _LEG_TOP
        poly = np.array(
            [
                pt(x - leg_w / L / 2, top),
                pt(x + leg_w / L / 2, top),
                pt(foot + leg_w / L / 2, _LEG_BOTTOM),
                pt(foot - leg_w / L / 2, _LEG_BOTTOM),
            ],
            np.int32,
        )
        cv2.fillConvexPoly(labels, poly, _COAT)
        hoof = np.array(
            [
                pt(foot - leg_w / L / 2 - 0.005, _LEG_BOTTOM - 0.05),
                pt(foot + leg_w / L / 2 + 0.005, _LEG_BOTTOM - 0.05),
                pt(foot + leg_w / L / 2, _LEG_BOTTOM),
                pt(foot - leg_w / L / 2, _LEG_BOTTOM),
            ],
            np.int32,
        )
        cv2.fillConvexPoly(labels, hoof, _HOOF)

    # Tail with a dark tuft.
    tail_end = pt(-0.56, 0.26 + 0.02 * math.sin(stride * 0.5))
    cv2.line(labels, pt(-0.47, -0.12), tail_end, _COAT, max(1, _px(0.025 * L)))
    cv2.circle(labels, tail_end, max(1, _px(0.035 * L)), _DARK, -1)

    # Body, neck and head make the coat region that patches are painted on.
    coat = np.zeros_like(labels)
    cv2.ellipse(coat, pt(0, 0), axes(0.5, 0.24), 0, 0, 360, 1, -1)
    neck = np.array(
        [
            pt(0.30, -0.20),
            pt(look.head_x - 0.06, look.head_y - 0.08),
            pt(look.head_x + 0.02, look.head_y + 0.07),
            pt(0.42, 0.10),
        ],
        np.int32,
    )
    cv2.fillPoly(coat, [neck], 1)
    head = pt(look.head_x, look.head_y)
    cv2.ellipse(coat, head, axes(0.15, 0.085), look.head_angle, 0, 360, 1, -1)
    labels[coat > 0] = _COAT

    paint = np.zeros_like(labels)
    for x, y, ax, ay, angle in look.patches:
        cv2.ellipse(paint, pt(x, y), axes(ax, ay), angle, 0, 360, 1, -1)
    cv2.ellipse(paint, head, axes(0.07, 0.07), 0, 0, 360, 1, -1)  # dark face patch
    labels[(paint > 0) & (coat > 0)] = _PATCH

    rad = math.radians(look.head_angle)
    snout = (look.head_x + 0.12 * math.cos(rad), look.head_y + 0.12 * math.sin(rad))
    cv2.ellipse(labels, pt(*snout), axes(0.055, 0.05), look.head_angle, 0, 360, _PINK, -1)
    ear = (look.head_x - 0.10 * math.cos(rad), look.head_y - 0.10 * math.sin(rad) - 0.06)
    cv2.ellipse(labels, pt(*ear), axes(0.05, 0.025), -20, 0, 360, _DARK, -1)
    if look.has_udder:
        cv2.ellipse(labels, pt(-0.18, 0.22), axes(0.07, 0.05), 0, 0, 360, _PINK, -1)

    if not facing_right:
        labels = labels[:, ::-1]
        cx = w - 1 - cx
    return np.ascontiguousarray(labels), cx, cy


@dataclass
class _Placement:
    """Where one animal is drawn in one image."""

    track_id: int
    look: _CowLook
    length: float
    x: float  # body centre, image pixels
    feet_y: float  # bottom of the hooves, image pixels; larger = nearer = drawn on top
    facing_right: bool
    stride: float = 0.0

    @property
    def body_y(self) -> float:
        return self.feet_y - _LEG_BOTTOM * self.length


def _palette(look: _CowLook) -> np.ndarray:
    palette = np.zeros((8, 3), np.float32)
    palette[_COAT] = look.coat
    palette[_PATCH] = look.patch
    palette[_PINK] = (225, 150, 150)
    palette[_HOOF] = (55, 50, 48)
    palette[_DARK] = (30, 25, 22)
    return palette


def _cast_shadows(image: np.ndarray, animals: Sequence[_Placement]) -> None:
    """Darken an ellipse of grass under every animal, before any animal is drawn."""
    height, width = image.shape[:2]
    for a in animals:
        ax, ay = max(1, int(0.5 * a.length)), max(1, int(0.06 * a.length))
        sx, sy = _px(a.x), _px(a.feet_y - 0.01 * a.length)
        x0, y0 = max(sx - ax, 0), max(sy - ay, 0)
        x1, y1 = min(sx + ax + 1, width), min(sy + ay + 1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        shadow = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.ellipse(shadow, (sx - x0, sy - y0), (ax, ay), 0, 0, 360, 1, -1)
        image[y0:y1, x0:x1][shadow > 0] *= 0.72


@dataclass
class _Layer:
    """One animal as drawn: its silhouette inside the image and where that lies."""

    mask: np.ndarray  # bool, the silhouette clipped to the image
    region: tuple[slice, slice]  # rows, cols of ``mask`` in the image

    @property
    def box(self) -> Box:
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        top, left = self.region[0].start, self.region[1].start
        return (
            float(left + cols[0]),
            float(top + rows[0]),
            float(left + cols[-1] + 1),
            float(top + rows[-1] + 1),
        )

    def full(self, shape: tuple[int, int], mask: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(shape, bool)
        out[self.region] = self.mask if mask is None else mask
        return out


def _compose(
    background: np.ndarray, animals: Sequence[_Placement]
) -> tuple[np.ndarray, list[_Layer | None], np.ndarray]:
    """Draw shadows, then animals from far to near (painter's order by feet row).

    Returns the float image, one layer per animal (None when it lies entirely outside the
    image) and an int16 map holding ``index + 1`` of the animal seen at each pixel (0 = none).
    """
    image = background.copy()
    height, width = image.shape[:2]
    _cast_shadows(image, animals)
    owner = np.zeros((height, width), np.int16)
    layers: list[_Layer | None] = [None] * len(animals)
    for i in sorted(range(len(animals)), key=lambda k: (animals[k].feet_y, k)):
        a = animals[i]
        labels, cx, cy = _render_cow(a.look, a.length, a.facing_right, a.stride)
        x0 = _px(a.x) - cx
        y0 = _px(a.body_y) - cy
        h, w = labels.shape
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + w, width), min(y0 + h, height)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        local = labels[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        mask = local > 0
        if not mask.any():
            continue
        region = (slice(iy0, iy1), slice(ix0, ix1))
        # Top-to-bottom shading gives the body some volume.
        shade = np.linspace(1.04, 0.80, local.shape[0], dtype=np.float32)[:, None, None]
        colours = _palette(a.look)[local] * shade
        image[region][mask] = colours[mask]
        owner[region][mask] = i + 1
        layers[i] = _Layer(mask, region)
    return image, layers, owner


def _visible_share(layers: Sequence[_Layer | None], owner: np.ndarray) -> list[float]:
    shares = []
    for i, layer in enumerate(layers):
        if layer is None:
            shares.append(0.0)
            continue
        seen = np.count_nonzero(layer.mask & (owner[layer.region] == i + 1))
        shares.append(seen / max(np.count_nonzero(layer.mask), 1))
    return shares


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add faint sensor noise and convert to uint8 RGB."""
    noise = rng.normal(0.0, 2.0, image.shape[:2]).astype(np.float32)[..., None]
    return np.clip(image + noise, 0, 255).astype(np.uint8)


# --- scenes ---------------------------------------------------------------------------------
def _length_at(feet_y: float, horizon: int, width: int, height: int) -> float:
    """Body length in pixels for an animal standing at ``feet_y`` (perspective: far = small)."""
    depth = np.clip((feet_y - horizon) / max(height - horizon, 1), 0.0, 1.0)
    return float(min(width / 1.5, height) * (0.15 + 0.35 * depth))


def _approx_box(x: float, feet_y: float, length: float) -> np.ndarray:
    """A cheap, slightly generous xyxy box of a cow, for placement before drawing."""
    return np.array([x - 0.74 * length, feet_y - 0.96 * length, x + 0.74 * length, feet_y])


def _place_scene(
    rng: np.random.Generator, count: int, width: int, height: int, horizon: int
) -> list[_Placement]:
    """Spread animals over the field.

    Most animals are placed where at most 15% of the smaller of two boxes overlaps the other;
    about a third of the later ones join an animal already placed (side by side, a little
    nearer or further), which gives partial occlusions covering at most half the smaller box.
    Where the image is too small for that, an animal goes where it overlaps least.
    """
    placed: list[_Placement] = []
    boxes: list[np.ndarray] = []
    for track_id in range(1, count + 1):
        huddle = bool(placed) and rng.random() < 0.35
        limit = 0.5 if huddle else 0.15
        best: tuple[float, float, float, float] | None = None  # overlap, x, feet_y, length
        for _ in range(30):
            if huddle:
                buddy = placed[int(rng.integers(len(placed)))]
                feet_y = buddy.feet_y + rng.choice([-1, 1]) * rng.uniform(0.05, 0.25) * buddy.length
                feet_y = float(np.clip(feet_y, horizon + 0.1 * (height - horizon), height))
            else:
                feet_y = horizon + rng.uniform(0.12, 1.0) * (height - horizon)
            length = _length_at(feet_y, horizon, width, height) * rng.uniform(0.85, 1.15)
            length = max(length, 18.0)
            if huddle:
                x = buddy.x + rng.choice([-1, 1]) * rng.uniform(0.7, 1.3) * length
            else:
                x = rng.uniform(0, width)
            margin = 0.5 * length  # at most about a sixth of the animal leaves the image
            x = float(np.clip(x, min(margin, width / 2), max(width - margin, width / 2)))
            overlap = _max_overlap(_approx_box(x, feet_y, length), boxes)
            if huddle and overlap == 0.0:
                overlap = 1.0  # a huddle that does not touch is no huddle; keep looking
            if best is None or overlap < best[0]:
                best = (overlap, x, feet_y, length)
            if overlap <= limit:
                break
        assert best is not None
        _, x, feet_y, length = best
        facing = bool(rng.random() < 0.5)
        placed.append(_Placement(track_id, _random_look(rng), length, x, feet_y, facing))
        boxes.append(_approx_box(x, feet_y, length))
    return placed


def _max_overlap(box: np.ndarray, others: Sequence[np.ndarray]) -> float:
    """Largest share of the smaller box covered, between ``box`` and any of ``others``.

    Unlike IoU this stays high when a big near animal covers a small far one.
    """
    if not others:
        return 0.0
    other = np.asarray(others)
    lt = np.maximum(box[:2], other[:, :2])
    rb = np.minimum(box[2:], other[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = (box[2:] - box[:2]).prod()
    areas = (other[:, 2:] - other[:, :2]).prod(axis=1)
    return float((inter / np.minimum(area, areas)).max())


def make_scene(
    seed: int,
    width: int = 640,
    height: int = 480,
    n_animals: int | tuple[int, int] = (1, 4),
) -> SyntheticImage:
    """Draw one pasture scene with cows; the same arguments always give the same pixels.

    Args:
        seed: any non-negative integer.
        width, height: image size in pixels (32..4096).
        n_animals: an exact count, or an inclusive ``(min, max)`` range the count is drawn from.
            0 gives an image with no cows (a negative example).

    Animals are placed so that boxes overlap by at most IoU 0.25 where the field has room; more
    animals than fit in a small image are placed where they overlap least.
    """
    rng = np.random.default_rng(_check_seed(seed))
    width, height = _check_size(width, height)
    low, high = _animal_range(n_animals)
    count = int(rng.integers(low, high + 1))
    background, horizon = _background(rng, width, height)
    animals = _place_scene(rng, count, width, height, horizon)
    image, layers, owner = _compose(background, animals)
    keep = [i for i, layer in enumerate(layers) if layer is not None]
    shape = (height, width)
    n = len(keep)
    masks = np.zeros((n, height, width), bool)
    visible = np.zeros((n, height, width), bool)
    boxes = np.zeros((n, 4), np.float64)
    for row, i in enumerate(keep):
        layer = layers[i]
        assert layer is not None
        boxes[row] = layer.box
        masks[row] = layer.full(shape)
        visible[row] = layer.full(shape, layer.mask & (owner[layer.region] == i + 1))
    return SyntheticImage(
        image=_finish(image, rng),
        boxes=boxes,
        class_names=["cow"] * n,
        track_ids=np.asarray([animals[i].track_id for i in keep], dtype=np.int64),
        masks=masks,
        visible_masks=visible,
    )


# --- files ----------------------------------------------------------------------------------
def make_dataset(
    out_dir: str | os.PathLike[str],
    n_images: int = 8,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    n_animals: int | tuple[int, int] = (1, 4),
) -> Path:
    """Write a COCO-format dataset of synthetic scenes and return the annotations path.

    Layout: ``out_dir/images/synthetic_000000.png`` ... and ``out_dir/annotations.json``. Image
    ``i`` is ``make_scene(scene_seed(seed, i), width, height, n_animals)``; image and annotation
    ids start at 1; the one category is ``{"id": 1, "name": "cow"}``. Each annotation's
    ``area`` is its box area and it carries the animal's ``track_id``. Every file is written to
    a temporary name first and renamed, so a crash never leaves a half-written file.
    """
    n_images = _check_int("n_images", n_images, 1, 100_000)
    seed = _check_seed(seed)
    width, height = _check_size(width, height)
    _animal_range(n_animals)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise CowdemoError(f"{root} is a file; give make_dataset a folder to write into.")
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)

    images, annotations = [], []
    for index in range(n_images):
        scene = make_scene(scene_seed(seed, index), width, height, n_animals)
        file_name = f"images/synthetic_{index:06d}.png"
        atomic_write_bytes(root / file_name, encode_png(scene.image))
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for box, track_id in zip(scene.boxes, scene.track_ids):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    "track_id": int(track_id),
                }
            )
    coco = {
        "info": {"description": f"cowdemo synthetic cows, seed {seed}", "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": COCO_CATEGORIES,
    }
    json_path = root / "annotations.json"
    atomic_write_bytes(json_path, json.dumps(coco, indent=1).encode("utf-8"))
    return json_path


# --- videos ---------------------------------------------------------------------------------
@dataclass
class _Walker:
    """One animal's path through a clip: position is a function of the frame index."""

    placement: _Placement
    start: np.ndarray  # (x, feet_y) at frame 0
    velocity: np.ndarray  # pixels per frame
    wander: np.ndarray  # (3, 2): amplitude, frequency, phase of a slow sway in x and y


def _walker_position(walker: _Walker, frame: float) -> tuple[float, float]:
    amp, freq, phase = walker.wander
    x = walker.start[0] + walker.velocity[0] * frame + amp[0] * math.sin(freq[0] * frame + phase[0])
    y = walker.start[1] + walker.velocity[1] * frame + amp[1] * math.sin(freq[1] * frame + phase[1])
    return x, y


def _plan_walkers(
    rng: np.random.Generator,
    n_animals: int,
    n_frames: int,
    width: int,
    height: int,
    horizon: int,
    crossing: bool,
) -> list[_Walker]:
    """Paths: with ``crossing`` animals 1 and 2 walk towards each other at nearly the same
    depth and meet at a whole frame 40-60% into the clip, so one hides part of the other.
    The others graze: a slow drift with a gentle sway, kept inside the frame."""
    span = max(n_frames - 1, 1)
    length = min(width / 1.5, height) * rng.uniform(0.30, 0.36)
    walkers: list[_Walker] = []
    no_wander = np.zeros((3, 2))
    no_wander[1] = 1.0
    if crossing:
        meet = _px(span * rng.uniform(0.4, 0.6))
        meet_x = width / 2 + rng.uniform(-0.05, 0.05) * width
        reach = 0.74 * length
        room = min(meet_x - reach * 0.6, width - reach * 0.6 - meet_x)
        speed = room / max(meet, span - meet, 1)
        feet = horizon + (height - horizon) * rng.uniform(0.55, 0.75)
        gap = length * rng.uniform(0.10, 0.20)  # depth offset, so the occlusion order is clear
        for track_id, direction, dy in ((1, 1.0, 0.0), (2, -1.0, gap)):
            look = _random_look(rng)
            size = length * rng.uniform(0.95, 1.05)
            place = _Placement(track_id, look, size, 0.0, 0.0, direction > 0)
            start = np.array([meet_x - direction * speed * meet, feet + dy])
            walkers.append(_Walker(place, start, np.array([direction * speed, 0.0]), no_wander))
    for track_id in range(len(walkers) + 1, n_animals + 1):
        best: tuple[float, _Walker] | None = None
        for _ in range(40):
            walker = _random_grazer(rng, track_id, span, width, height, horizon)
            overlap = _path_overlap(walker, walkers, span)
            if best is None or overlap < best[0]:
                best = (overlap, walker)
            if overlap <= 0.02:
                break
        assert best is not None
        walkers.append(best[1])
    return walkers


def _random_grazer(
    rng: np.random.Generator, track_id: int, span: int, width: int, height: int, horizon: int
) -> _Walker:
    """A grazing animal: a slow drift over at most 15% of the width, with a gentle sway."""
    feet = horizon + (height - horizon) * rng.uniform(0.25, 1.0)
    size = _length_at(feet, horizon, width, height) * rng.uniform(0.9, 1.1)
    half = 0.74 * size
    low, high = min(half * 0.8, width / 2), max(width - half * 0.8, width / 2)
    x = rng.uniform(low, high)
    # Keep the whole path inside the frame: clamp the drift to the room available.
    end_x = float(np.clip(x + rng.uniform(-1, 1) * width * 0.15, low, high))
    vx = (end_x - x) / span
    vy = rng.uniform(-1, 1) * (height - horizon) * 0.05 / span
    wander = np.array(
        [
            [rng.uniform(0, 0.02) * width, rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi)],
            [rng.uniform(0, 0.01) * height, rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi)],
        ]
    ).T
    place = _Placement(track_id, _random_look(rng), size, 0.0, 0.0, bool(vx >= 0))
    return _Walker(place, np.array([x, feet]), np.array([vx, vy]), wander)


def _path_overlap(walker: _Walker, others: Sequence[_Walker], span: int) -> float:
    """Largest box overlap between ``walker`` and any of ``others`` over the clip (sampled)."""
    worst = 0.0
    for frame in np.linspace(0, span, 9):
        x, y = _walker_position(walker, float(frame))
        box = _approx_box(x, y, walker.placement.length)
        boxes = [
            _approx_box(*_walker_position(o, float(frame)), o.placement.length) for o in others
        ]
        worst = max(worst, _max_overlap(box, boxes))
    return worst


def make_video_frames(
    seed: int,
    n_frames: int = 60,
    width: int = 320,
    height: int = 240,
    n_animals: int = 3,
    crossing: bool = True,
    fps: float = 10.0,
) -> SyntheticVideo:
    """A static-camera clip of cows moving over a pasture, with exact per-frame boxes.

    With ``crossing=True`` (needs ``n_animals >= 2``) track ids 1 and 2 walk towards each other
    and pass near the middle of the clip (2 walks slightly nearer the camera, so it hides part
    of 1): the case that makes a tracker switch ids. With 3 or more frames they start on
    opposite sides of the meeting point and end on swapped sides. The other animals graze with
    a slow drift, placed so their paths barely overlap anyone's. Legs swing as animals walk.
    """
    rng = np.random.default_rng(_check_seed(seed))
    n_frames = _check_int("n_frames", n_frames, 1, MAX_FRAMES)
    width, height = _check_size(width, height)
    n_animals = _check_int("n_animals", n_animals, 0, MAX_ANIMALS)
    if crossing and n_animals < 2:
        raise CowdemoError(f"crossing needs at least 2 animals, got n_animals={n_animals}.")
    if not (isinstance(fps, (int, float)) and 0 < fps <= 240):
        raise CowdemoError(f"fps must be between 0 and 240, got {fps!r}.")

    background, horizon = _background(rng, width, height)
    walkers = _plan_walkers(rng, n_animals, n_frames, width, height, horizon, crossing)
    frames: list[np.ndarray] = []
    tracks: list[list[tuple[int, Box]]] = []
    visibility: list[list[float]] = []
    travelled = np.zeros(len(walkers))
    for frame in range(n_frames):
        placements = []
        for k, walker in enumerate(walkers):
            x, feet_y = _walker_position(walker, frame)
            if frame:
                px, py = _walker_position(walker, frame - 1)
                travelled[k] += math.hypot(x - px, feet_y - py)
            p = walker.placement
            stride = travelled[k] / max(p.length * 0.12, 1e-6)
            placements.append(
                _Placement(p.track_id, p.look, p.length, x, feet_y, p.facing_right, stride)
            )
        image, layers, owner = _compose(background, placements)
        shares = _visible_share(layers, owner)
        frames.append(_finish(image, rng))
        kept = [(i, layer) for i, layer in enumerate(layers) if layer is not None]
        tracks.append([(placements[i].track_id, layer.box) for i, layer in kept])
        visibility.append([shares[i] for i, _ in kept])
    return SyntheticVideo(
        frames=frames,
        tracks=tracks,
        visibility=visibility,
        crossing_pair=(1, 2) if crossing else None,
        fps=float(fps),
    )


_FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG"}


def write_video(
    path: str | os.PathLike[str], video: SyntheticVideo, fps: float | None = None
) -> Path:
    """Write the frames with OpenCV: ``.mp4`` as MPEG-4 Part 2 (mp4v), ``.avi`` as MJPG.

    These are for reading back with OpenCV and the tracking pipeline; browsers do not play mp4v
    (re-encode with :mod:`cowdemo.video` for that). The file is written under a temporary name
    and renamed when complete. Returns the path.
    """
    path = Path(path)
    fourcc = _FOURCC_BY_SUFFIX.get(path.suffix.lower())
    if fourcc is None:
        raise CowdemoError(
            f"Cannot write video {path.name}: use a .mp4 (mp4v) or .avi (MJPG) file name."
        )
    if not video.frames:
        raise CowdemoError("The video has no frames to write.")
    rate = float(video.fps if fps is None else fps)
    if not 0 < rate <= 240:
        raise CowdemoError(f"fps must be between 0 and 240, got {rate}.")
    width, height = video.size
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), rate, (width, height))
    try:
        if not writer.isOpened():
            raise CowdemoError(
                f"OpenCV cannot write {fourcc} video here; try the other of .mp4 and .avi."
            )
        for frame in video.frames:
            if frame.shape[:2] != (height, width):
                raise CowdemoError("All frames of a video must have the same size.")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
    return path


def mot_rows(video: SyntheticVideo) -> list[tuple[int, int, float, float, float, float]]:
    """Ground truth as ``(frame, id, left, top, width, height)`` rows, frames 1-based."""
    rows = []
    for frame, boxes in enumerate(video.tracks, start=1):
        for track_id, (x1, y1, x2, y2) in boxes:
            rows.append((frame, int(track_id), x1, y1, x2 - x1, y2 - y1))
    return rows


def _num(value: float) -> str:
    """A box coordinate for a text file: whole numbers without a decimal point."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def write_mot_gt(path: str | os.PathLike[str], video: SyntheticVideo) -> Path:
    """Write MOTChallenge ground truth: ``frame,id,left,top,width,height,1,-1,-1,-1`` per box.

    Frames and ids are 1-based; rows are sorted by frame then id. Written atomically.
    """
    lines = [
        f"{frame},{tid},{_num(left)},{_num(top)},{_num(w)},{_num(h)},1,-1,-1,-1"
        for frame, tid, left, top, w, h in sorted(mot_rows(video))
    ]
    path = Path(path)
    atomic_write_bytes(path, ("\n".join(lines) + "\n" if lines else "").encode("ascii"))
    return path
