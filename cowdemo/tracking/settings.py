"""What a tracking run is set up with: which frames the detector sees (:class:`VideoSettings`)
and how Norfair links boxes into tracks (:class:`TrackerSettings`), validated once, with every
setting explained in plain words for the app and the CLI.

Distances are chosen by name, as in Norfair, from :data:`DISTANCES`::

    TrackerSettings()                                   # the notebook: centroids, 20 pixels
    TrackerSettings(distance="iou", distance_threshold=0.7)
    TrackerSettings(reid=True)                          # lost cows recognised by their coat
    TrackerSettings(family="bytetrack")                 # ByteTrack (supervision) instead

Two tracker families share one settings object: ``family="norfair"`` uses the distance,
hit counter, initialisation delay and re-identification settings; ``family="bytetrack"`` uses
the ``bytetrack_*`` ones. Score threshold and classes apply to both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cowdemo.errors import CowdemoError
from cowdemo.video import check_max_side, check_stride

Points = Literal["centroid", "corners"]

#: The tracker families, with what they are in plain words.
FAMILIES: dict[str, str] = {
    "norfair": "Norfair: links each box to the nearest tracked cow by a distance you choose "
    "(centres, corners or overlap), with an optional coat-colour re-identification.",
    "bytetrack": "ByteTrack (supervision): predicts where each cow moves (Kalman filter), links "
    "boxes by overlap, and keeps tracks alive through low-score boxes; the tracker most "
    "often compared with Norfair.",
}


@dataclass(frozen=True)
class DistanceSpec:
    """One way of measuring how far a new box is from a tracked cow.

    Attributes:
        name: the name users pick (Norfair's name for it).
        points: what each box is turned into for Norfair: its centre, or its two corners
            (top-left, bottom-right).
        unit: what the threshold is measured in, for labels.
        default_threshold: a sensible starting threshold.
        max_threshold: the largest meaningful threshold (None: no upper bound).
        step: slider step for the threshold.
        help: the plain-words explanation shown beside the setting.
    """

    name: str
    points: Points
    unit: str
    default_threshold: float
    max_threshold: float | None
    step: float
    help: str
    scalar: bool = False  # Norfair computes it pair by pair in Python (slower with many cows)


DISTANCES: dict[str, DistanceSpec] = {
    d.name: d
    for d in (
        DistanceSpec(
            "euclidean", "centroid", "pixels", 20.0, None, 1.0,
            "Straight-line distance between box centres, in pixels: the notebook's choice. A "
            "cow whose centre moves further than the threshold between two processed frames "
            "starts a new track; two cows closer than it can swap ids.",
        ),
        DistanceSpec(
            "iou", "corners", "1 - IoU", 0.7, 1.0, 0.05,
            "One minus the overlap (intersection over union) of the boxes: 0 for the same box, "
            "1 for boxes that do not touch. Threshold 0.7 links boxes that overlap by more "
            "than 30%. Independent of the cow's size in pixels.",
        ),
        DistanceSpec(
            "mean_euclidean", "corners", "pixels", 30.0, None, 1.0,
            "Average distance of the two box corners, in pixels: like the centre distance, but "
            "also notices when a box changes size or shape (a cow turning).",
            scalar=True,
        ),
        DistanceSpec(
            "mean_manhattan", "corners", "pixels", 40.0, None, 1.0,
            "Average of |dx| + |dy| over the two box corners, in pixels.",
            scalar=True,
        ),
        DistanceSpec(
            "frobenius", "corners", "pixels", 40.0, None, 1.0,
            "Length of the difference of both corners taken together (square root of the sum "
            "of squares), in pixels.",
            scalar=True,
        ),
        DistanceSpec(
            "cityblock", "centroid", "pixels", 28.0, None, 1.0,
            "|dx| + |dy| between box centres, in pixels (city-block distance).",
        ),
        DistanceSpec(
            "chebyshev", "centroid", "pixels", 20.0, None, 1.0,
            "The larger of |dx| and |dy| between box centres, in pixels.",
        ),
        DistanceSpec(
            "normalized_mean_euclidean", "corners", "fraction of the frame", 0.05, 1.0, 0.01,
            "Average corner distance with x measured in frame widths and y in frame heights: "
            "the same threshold works at any resolution (0.05 = 5% of the frame).",
            scalar=True,
        ),
    )
}  # fmt: skip

DEFAULT_DISTANCE = "euclidean"

#: Plain-words help for each setting, shared by the app's widgets and the CLI's --help.
HELP: dict[str, str] = {
    "distance": "How the distance between a new box and a tracked cow is measured.",
    "distance_threshold": "Boxes further than this from every tracked cow start a new track. "
    "Too small: a cow that moves or turns gets a new id. Too large: cows that pass close to "
    "each other swap ids.",
    "hit_counter_max": "How many processed frames a cow may go undetected (hidden, or missed "
    "by the detector) before its track is closed. Larger keeps ids through short occlusions "
    "but lets a track linger after the cow has gone.",
    "initialization_delay": "How many times a new box must be seen before it becomes a track "
    "(filters one-frame false detections). Empty: half the hit counter, Norfair's default.",
    "reid": "Re-identification: when a cow is lost and a new track starts that looks like it "
    "(coat colours inside the box), give the new track the old id back.",
    "reid_distance_threshold": "How different two coats may look and still be the same cow: "
    "0 identical colours, 1 nothing in common.",
    "reid_hit_counter_max": "How many processed frames a lost cow is remembered for "
    "re-identification.",
    "score_threshold": "Boxes the detector scores lower are ignored by the tracker.",
    "classes": "Only boxes of these classes are tracked (all when empty).",
    "class_aware": "Only link boxes of the same class (a box the model calls 'dog' in one frame "
    "and 'cow' in the next then starts a new track).",
    "stride": "Run the detector on every n-th frame only (2 = half the frames): faster, but "
    "cows move further between processed frames, so raise the distance threshold.",
    "max_side": "Frames larger than this (longer side, pixels) are scaled down before "
    "detection; boxes and exports stay in the original video's pixels.",
    "max_frames": "Stop after this many processed frames (empty: the whole video).",
    "family": "Which tracker links the boxes: Norfair (distance by name) or ByteTrack "
    "(motion prediction and overlap).",
    "backfill": "Norfair reports a cow only once it has been seen 'initialization delay' "
    "times, so each cow's first frames had no id. The video is processed offline, so once a "
    "track is confirmed its earlier boxes get the same id: no lost first frames.",
    "bytetrack_activation": "ByteTrack: boxes scoring at least this are matched first and can "
    "start new tracks (a new track needs this + 0.1); boxes below it only keep existing "
    "tracks alive (ByteTrack's second pass).",
    "bytetrack_lost_buffer": "ByteTrack: how many processed frames a lost cow is kept, waiting "
    "for a box to continue its track.",
    "bytetrack_match": "ByteTrack: the largest matching cost (1 - overlap, weighted by the "
    "score) at which a box still continues a track. Larger links boxes that overlap less.",
    "bytetrack_min_frames": "ByteTrack: how many frames in a row a new track must be seen "
    "before it gets an id.",
}


@dataclass(frozen=True)
class VideoSettings:
    """Which frames the detector sees. Part of the detection cache key.

    Attributes:
        stride: process every ``stride``-th frame (1 = all).
        max_side: scale frames down so the longer side is at most this (None = original size).
        max_frames: stop after this many processed frames (None = whole video).
    """

    stride: int = 1
    max_side: int | None = 1280
    max_frames: int | None = None

    def __post_init__(self) -> None:
        check_stride(self.stride)
        object.__setattr__(self, "max_side", check_max_side(self.max_side))
        if self.max_frames is not None and (
            isinstance(self.max_frames, bool)
            or not isinstance(self.max_frames, int)
            or not 1 <= self.max_frames <= 1_000_000
        ):
            raise CowdemoError(
                f"Maximum frames must be a whole number from 1 to 1,000,000, got "
                f"{self.max_frames!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrackerSettings:
    """How boxes become tracks (Norfair), and which boxes are tracked.

    The defaults are the notebook's: box centres, Euclidean distance, threshold 20 pixels,
    Norfair's hit counter (15) and initialisation delay (half of it), no re-identification.
    Frames here are processed frames (with a stride of 2, a hit counter of 15 spans 30 video
    frames). See :data:`HELP` for each setting in plain words.
    """

    distance: str = DEFAULT_DISTANCE
    distance_threshold: float | None = None  # None: the distance's default (20 px, 0.7 IoU)
    hit_counter_max: int = 15
    initialization_delay: int | None = None
    reid: bool = False
    reid_distance_threshold: float = 0.15
    reid_hit_counter_max: int = 50
    score_threshold: float = 0.5
    classes: tuple[str, ...] | None = ("cow",)
    class_aware: bool = False
    backfill: bool = True
    family: str = "norfair"
    bytetrack_activation: float = 0.25
    bytetrack_lost_buffer: int = 30
    bytetrack_match: float = 0.8
    bytetrack_min_frames: int = 1
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes) or None)
        spec = DISTANCES.get(self.distance)
        if spec is None:
            raise CowdemoError(
                f"Unknown distance {self.distance!r}: choose one of {', '.join(DISTANCES)}."
            )
        if self.distance_threshold is None:
            object.__setattr__(self, "distance_threshold", spec.default_threshold)
        _check_number("Distance threshold", self.distance_threshold, 0.0, spec.max_threshold)
        if self.distance_threshold <= 0:
            raise CowdemoError("Distance threshold must be above 0.")
        _check_int("Hit counter maximum", self.hit_counter_max, 1, 10_000)
        if self.initialization_delay is not None:
            _check_int("Initialization delay", self.initialization_delay, 0,
                       self.hit_counter_max - 1)
        if self.reid:
            if self.delay == 0:
                raise CowdemoError(
                    "Re-identification needs an initialization delay of at least 1: a new track "
                    "is compared with lost ones while it is being confirmed."
                )
            _check_number("Re-identification threshold", self.reid_distance_threshold, 0.0, 1.0)
            _check_int("Re-identification memory", self.reid_hit_counter_max, 1, 100_000)
        _check_number("Score threshold", self.score_threshold, 0.0, 1.0)
        if self.family not in FAMILIES:
            raise CowdemoError(
                f"Unknown tracker {self.family!r}: choose one of {', '.join(FAMILIES)}."
            )
        _check_number("ByteTrack activation threshold", self.bytetrack_activation, 0.0, 1.0)
        _check_int("ByteTrack lost-track memory", self.bytetrack_lost_buffer, 1, 100_000)
        _check_number("ByteTrack matching threshold", self.bytetrack_match, 0.0, 1.0)
        if self.bytetrack_match <= 0:
            raise CowdemoError("ByteTrack matching threshold must be above 0.")
        _check_int("ByteTrack frames before an id", self.bytetrack_min_frames, 1, 1000)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerSettings:
        """Settings from :meth:`to_dict`'s output (unknown keys ignored, older runs load)."""
        known = {f for f in cls.__dataclass_fields__ if f != "label"}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("classes"), list):
            values["classes"] = tuple(values["classes"])
        return cls(**values)

    @property
    def spec(self) -> DistanceSpec:
        return DISTANCES[self.distance]

    @property
    def delay(self) -> int:
        """The initialisation delay in force (Norfair's default: half the hit counter)."""
        if self.initialization_delay is None:
            return self.hit_counter_max // 2
        return self.initialization_delay

    def with_changes(self, **changes: Any) -> TrackerSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Everything that changes the tracks (not the label), JSON-ready."""
        data = asdict(self)
        data.pop("label")
        data["classes"] = list(self.classes) if self.classes is not None else None
        return data

    def describe(self) -> str:
        """One line, e.g. "euclidean < 20 pixels, hit counter 15, delay 7"."""
        if self.family == "bytetrack":
            return (
                f"ByteTrack: activation {self.bytetrack_activation:g}, match < "
                f"{self.bytetrack_match:g}, lost buffer {self.bytetrack_lost_buffer}, "
                f"{self.bytetrack_min_frames} frame(s) before an id"
            )
        text = (
            f"{self.distance} < {self.distance_threshold:g} {self.spec.unit}, hit counter "
            f"{self.hit_counter_max}, delay {self.delay}"
        )
        if self.reid:
            text += f", re-id < {self.reid_distance_threshold:g} for {self.reid_hit_counter_max}"
        if self.class_aware:
            text += ", same class only"
        if not self.backfill:
            text += ", no backfill"
        return text


def _check_number(name: str, value: object, low: float, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise CowdemoError(f"{name} must be a number, got {value!r}.")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise CowdemoError(f"{name} must be {bound}, got {value:g}.")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CowdemoError(f"{name} must be a whole number, got {value!r}.")
    if not low <= value <= high:
        raise CowdemoError(f"{name} must be from {low} to {high}, got {value}.")
