"""Multi-object tracking metrics: CLEAR MOT, Identity (IDF1) and HOTA, plus MOTChallenge text IO.

Our own numpy/scipy implementation; the numbers follow the two reference tools exactly:

- CLEAR MOT and Identity metrics as py-motmetrics computes them (``MOTAccumulator`` with
  ``iou_matrix(..., max_iou=1 - iou_threshold)``, ``compute_many(..., generate_overall=True)``):
  a ground-truth box and a tracker box can match when IoU >= ``iou_threshold``.
- HOTA, DetA, AssA and LocA as TrackEval computes them: IoU similarity, a per-frame Hungarian
  matching that maximises global alignment x similarity, averaged over alpha = 0.05 .. 0.95.

Typical use::

    gt = read_mot("TUD-Campus/gt.txt")
    pred = read_mot("TUD-Campus/test.txt")
    result = evaluate_tracking(gt, pred)
    result.mota, result.idf1, result.hota, result.switch_events[:3]

Without ground truth, :func:`suspected_switches` and :func:`track_summary` describe a tracker's
output on its own (tracks that end where another begins a few frames later, lifetimes, counts).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError

__all__ = [
    "HOTA_ALPHAS",
    "MOTCHALLENGE_METRICS",
    "HotaDetail",
    "MotSequence",
    "PerFrameCounts",
    "SuspectedSwitch",
    "SwitchEvent",
    "TrackSummary",
    "TrackingResult",
    "combine_results",
    "evaluate_many",
    "evaluate_tracking",
    "id_switch_events",
    "read_mot",
    "suspected_switches",
    "track_summary",
    "write_mot",
]

# TrackEval's localisation thresholds, built the same way so every alpha is bit-identical.
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo(float).eps

# The summary columns py-motmetrics and the MOTChallenge devkit print, in their order.
MOTCHALLENGE_METRICS = (
    "idf1",
    "idp",
    "idr",
    "recall",
    "precision",
    "num_unique_objects",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
    "num_false_positives",
    "num_misses",
    "num_switches",
    "num_fragmentations",
    "mota",
    "motp",
)

_MOT_COLUMNS = "frame,id,left,top,width,height,conf,x,y,z"


# --------------------------------------------------------------------------------------------
# MOTChallenge sequences and text IO
# --------------------------------------------------------------------------------------------
@dataclass
class MotSequence:
    """Boxes of one video in MOTChallenge terms: one row per (frame, track id).

    Attributes:
        frames: (n,) int64 frame numbers, 1-based as in MOTChallenge files.
        ids: (n,) int64 track ids (ground-truth object ids or tracker hypothesis ids).
        tlwh: (n, 4) float64 boxes as (left, top, width, height) in pixels.
        confidences: (n,) float64 the file's ``conf`` column (1 where absent).
        world: (n, 3) float64 the trailing ``x, y, z`` columns (-1 where absent).
        name: an optional label, e.g. the sequence name.

    A (frame, id) pair may occur only once: a track has one box per frame.
    """

    frames: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    confidences: np.ndarray | None = None
    world: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(-1, 4)
        n = len(self.tlwh)
        self.frames = _as_int_array(self.frames, "frames")
        self.ids = _as_int_array(self.ids, "ids")
        if self.confidences is None:
            self.confidences = np.ones(n)
        self.confidences = np.asarray(self.confidences, dtype=np.float64).reshape(-1)
        if self.world is None:
            self.world = np.full((n, 3), -1.0)
        self.world = np.asarray(self.world, dtype=np.float64).reshape(-1, 3)
        for name in ("frames", "ids", "confidences", "world"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"MotSequence.{name} has {len(getattr(self, name))} rows for {n} boxes"
                )
        if n and not np.isfinite(self.tlwh).all():
            raise CowdemoError("A track box holds NaN or infinite values: fix the tracker output.")
        if n and (self.tlwh[:, 2:] < 0).any():
            raise CowdemoError(
                "A track box has a negative width or height: fix the tracker output."
            )
        duplicate = _first_duplicate(self.frames, self.ids)
        if duplicate is not None:
            frame, track = self.frames[duplicate], self.ids[duplicate]
            raise CowdemoError(
                f"Track id {track} has two boxes in frame {frame}{self._label()}: "
                "each id may occur once per frame."
            )

    def _label(self) -> str:
        return f" of {self.name}" if self.name else ""

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def empty(cls, name: str = "") -> MotSequence:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), name=name)

    @classmethod
    def from_detections(
        cls, per_frame: Mapping[int, Detections] | Iterable[tuple[int, Detections]], name: str = ""
    ) -> MotSequence:
        """Tracked :class:`Detections` per 1-based frame number, e.g. a tracker's output::

        MotSequence.from_detections({1: dets_frame1, 2: dets_frame2})
        """
        items = per_frame.items() if isinstance(per_frame, Mapping) else per_frame
        frames, ids, boxes, scores = [], [], [], []
        for frame, dets in items:
            if len(dets) and dets.track_ids is None:
                raise CowdemoError(
                    f"Frame {frame} has boxes without track ids: run the tracker before evaluating."
                )
            frames.append(np.full(len(dets), int(frame), np.int64))
            ids.append(dets.track_ids if dets.track_ids is not None else np.zeros(0, np.int64))
            boxes.append(dets.xywh)
            scores.append(dets.scores)
        if not frames:
            return cls.empty(name)
        return cls(
            np.concatenate(frames),
            np.concatenate(ids),
            np.concatenate(boxes),
            np.concatenate(scores),
            name=name,
        )

    # --- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tlwh)

    def __getitem__(self, index: Any) -> MotSequence:
        """Boolean mask, integer array or slice: ``seq[seq.confidences >= 1]``."""
        return MotSequence(
            self.frames[index],
            self.ids[index],
            self.tlwh[index],
            self.confidences[index],
            self.world[index],
            self.name,
        )

    @property
    def xyxy(self) -> np.ndarray:
        """(n, 4) boxes as (x1, y1, x2, y2), the :class:`Detections` convention."""
        return np.concatenate([self.tlwh[:, :2], self.tlwh[:, :2] + self.tlwh[:, 2:]], axis=1)

    @property
    def centers(self) -> np.ndarray:
        return self.tlwh[:, :2] + self.tlwh[:, 2:] / 2

    @property
    def frame_numbers(self) -> np.ndarray:
        """Sorted distinct frame numbers that hold at least one box."""
        return np.unique(self.frames)

    @property
    def track_ids(self) -> np.ndarray:
        """Sorted distinct track ids."""
        return np.unique(self.ids)

    def in_frame(self, frame: int) -> MotSequence:
        return self[self.frames == frame]


def _as_int_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values).reshape(-1)
    whole = np.isfinite(array).all() and (array == np.round(array)).all()
    if array.dtype.kind == "f" and not whole:
        raise CowdemoError(f"Track {name} must be whole numbers.")
    return array.astype(np.int64)


def _first_duplicate(frames: np.ndarray, ids: np.ndarray) -> int | None:
    """Index of the first row (in input order) that repeats an earlier (frame, id), or None."""
    if len(frames) < 2:
        return None
    order = np.lexsort((np.arange(len(frames)), ids, frames))
    same = (np.diff(frames[order]) == 0) & (np.diff(ids[order]) == 0)
    if not same.any():
        return None
    return int(order[1:][same].min())


def _mot_text(source: str | os.PathLike | bytes | io.IOBase) -> tuple[str, str]:
    """(text, label for messages) from a path, a file object, bytes or the text itself."""
    if isinstance(source, bytes):
        return source.decode("utf-8", errors="replace"), "MOT text"
    if hasattr(source, "read"):
        data = source.read()
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        return text, str(getattr(source, "name", "MOT text"))
    if isinstance(source, str) and (
        "\n" in source or ("," in source and not os.path.exists(source))
    ):
        return source, "MOT text"
    path = Path(source)
    try:
        if path.exists():
            from cowdemo.files import require_regular_file

            require_regular_file(path, "MOT text file")  # a FIFO would block forever
        return path.read_text(encoding="utf-8", errors="replace"), path.name
    except FileNotFoundError:
        raise CowdemoError(f"MOT file {path} does not exist: check the path.") from None
    except OSError as exc:
        raise CowdemoError(
            f"Cannot read MOT file {path} ({exc.strerror}): check the path."
        ) from None


def read_mot(
    source: str | os.PathLike | bytes | io.IOBase,
    name: str | None = None,
    min_confidence: float | None = None,
) -> MotSequence:
    """Read MOTChallenge text: ``frame,id,left,top,width,height,conf,x,y,z`` per line.

    ``source`` is a path, an open file, bytes, or the text itself. Rows of 6 to 10 values are
    accepted (``conf`` defaults to 1, ``x,y,z`` to -1); values may be separated by commas or
    whitespace; blank lines and lines starting with ``#`` are skipped. ``min_confidence`` drops
    rows whose ``conf`` is lower (1 keeps only the valid boxes of MOTChallenge ground truth).
    A malformed row raises :class:`CowdemoError` naming its line number.
    """
    text, label = _mot_text(source)
    rows: list[list[float]] = []
    lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")] if "," in line else line.split()
        if not 6 <= len(parts) <= 10:
            raise CowdemoError(
                f"{label} line {number}: expected 6 to 10 values ({_MOT_COLUMNS}), "
                f"found {len(parts)}: fix or remove the line."
            )
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise CowdemoError(
                f"{label} line {number}: {line[:60]!r} holds a value that is not a number "
                f"(expected {_MOT_COLUMNS}): fix or remove the line."
            ) from None
        rows.append(values + [1.0, -1.0, -1.0, -1.0][len(values) - 6 :])
        lines.append(number)
    table = np.array(rows, dtype=np.float64).reshape(-1, 10)
    line_numbers = np.array(lines, dtype=np.int64)
    _check_mot_table(table, line_numbers, label)
    seq = MotSequence(
        table[:, 0].astype(np.int64),
        table[:, 1].astype(np.int64),
        table[:, 2:6],
        table[:, 6],
        table[:, 7:10],
        name=name if name is not None else label,
    )
    if min_confidence is not None:
        seq = seq[seq.confidences >= min_confidence]
    return seq


def _check_mot_table(table: np.ndarray, line_numbers: np.ndarray, label: str) -> None:
    """Raise naming the first bad line: whole 1-based frames, whole ids, finite boxes."""
    frame, track = table[:, 0], table[:, 1]
    checks = [
        (~np.isfinite(table[:, :7]).all(axis=1), "holds NaN or infinite values"),
        ((frame != np.round(frame)) | (frame < 1), "has a frame number that is not 1, 2, 3, ..."),
        (track != np.round(track), "has a track id that is not a whole number"),
        ((table[:, 4] < 0) | (table[:, 5] < 0), "has a negative width or height"),
    ]
    for bad, what in checks:
        if bad.any():
            number = line_numbers[np.argmax(bad)]
            raise CowdemoError(f"{label} line {number} {what}: fix or remove the line.")
    duplicate = _first_duplicate(frame.astype(np.int64), track.astype(np.int64))
    if duplicate is not None:
        raise CowdemoError(
            f"{label} line {line_numbers[duplicate]} repeats track id {int(track[duplicate])} "
            f"in frame {int(frame[duplicate])}: each id may occur once per frame."
        )


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.10g}"


def write_mot(path: str | os.PathLike, sequence: MotSequence) -> Path:
    """Write ``sequence`` as MOTChallenge text, rows sorted by frame then id.

    Atomic: the text goes to a temporary file beside ``path`` that then replaces it, so a
    reader never sees a half-written file.
    """
    path = Path(path)
    order = np.lexsort((sequence.ids, sequence.frames))
    fmt = _format_number
    lines = [
        ",".join(
            [str(sequence.frames[i]), str(sequence.ids[i])]
            + [fmt(v) for v in sequence.tlwh[i]]
            + [fmt(sequence.confidences[i])]
            + [fmt(v) for v in sequence.world[i]]
        )
        for i in order
    ]
    text = "\n".join(lines) + ("\n" if lines else "")
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CowdemoError(f"Cannot write {path} ({exc.strerror}): check the folder.") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
class SwitchEvent(NamedTuple):
    """A ground-truth object matched to a different tracker id than at its last match."""

    frame: int
    gt_id: int
    old_pred_id: int
    new_pred_id: int


class SuspectedSwitch(NamedTuple):
    """A track that starts near where another ended a few frames earlier (no ground truth)."""

    frame: int  # first frame of the started track
    ended_id: int
    started_id: int
    distance: float  # pixels between the last centre of one and the first centre of the other


@dataclass
class PerFrameCounts:
    """CLEAR MOT events per frame, for timelines. All arrays have one entry per frame."""

    frames: np.ndarray
    num_objects: np.ndarray
    num_predictions: np.ndarray
    num_matches: np.ndarray  # includes switches
    num_switches: np.ndarray
    num_false_positives: np.ndarray
    num_misses: np.ndarray


@dataclass
class HotaDetail:
    """HOTA per localisation threshold alpha, with the counts needed to combine sequences."""

    alphas: np.ndarray
    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    det_a: np.ndarray
    ass_a: np.ndarray
    loc_a: np.ndarray
    hota: np.ndarray


@dataclass
class TrackingResult:
    """Every metric of one sequence (or of several combined, e.g. ``OVERALL``).

    Ratios follow py-motmetrics (``motp`` is the mean 1 - IoU over matches: lower is better) and
    TrackEval (``hota``, ``det_a``, ``ass_a``, ``loc_a``: means over :data:`HOTA_ALPHAS`).
    """

    name: str
    iou_threshold: float
    num_frames: int
    num_objects: int  # ground-truth boxes
    num_predictions: int  # tracker boxes
    num_unique_objects: int
    num_matches: int  # matches that are not switches
    num_switches: int
    num_false_positives: int
    num_misses: int
    num_fragmentations: int
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int
    motp_distance_sum: float
    idtp: int
    idfp: int
    idfn: int
    hota_detail: HotaDetail
    switch_events: list[SwitchEvent] = field(default_factory=list)
    per_frame: PerFrameCounts | None = None

    # --- CLEAR MOT -------------------------------------------------------------------------
    @property
    def num_detections(self) -> int:
        """Matched ground-truth boxes, switches included."""
        return self.num_matches + self.num_switches

    @property
    def mota(self) -> float:
        errors = self.num_misses + self.num_switches + self.num_false_positives
        return 1.0 - _ratio(errors, self.num_objects)

    @property
    def motp(self) -> float:
        return _ratio(self.motp_distance_sum, self.num_detections)

    @property
    def recall(self) -> float:
        return _ratio(self.num_detections, self.num_objects)

    @property
    def precision(self) -> float:
        return _ratio(self.num_detections, self.num_detections + self.num_false_positives)

    # --- Identity --------------------------------------------------------------------------
    @property
    def idf1(self) -> float:
        return _ratio(2 * self.idtp, self.num_objects + self.num_predictions)

    @property
    def idp(self) -> float:
        return _ratio(self.idtp, self.idtp + self.idfp)

    @property
    def idr(self) -> float:
        return _ratio(self.idtp, self.idtp + self.idfn)

    # --- HOTA ------------------------------------------------------------------------------
    @property
    def hota(self) -> float:
        return float(self.hota_detail.hota.mean())

    @property
    def det_a(self) -> float:
        return float(self.hota_detail.det_a.mean())

    @property
    def ass_a(self) -> float:
        return float(self.hota_detail.ass_a.mean())

    @property
    def loc_a(self) -> float:
        return float(self.hota_detail.loc_a.mean())

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat metrics keyed by py-motmetrics names, plus HOTA, DetA, AssA and LocA."""
        keys = (
            "name",
            *MOTCHALLENGE_METRICS,
            "num_frames",
            "num_objects",
            "num_predictions",
            "num_matches",
            "num_detections",
            "idtp",
            "idfp",
            "idfn",
            "hota",
            "det_a",
            "ass_a",
            "loc_a",
        )
        return {key: getattr(self, key) for key in keys}


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0 (py-motmetrics' quiet_divide)."""
    return float(numerator) / denominator if denominator else float("nan")


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
@dataclass
class _Pairs:
    """Both sequences in frame order with dense ids, and every same-frame (gt, pred) pair's IoU."""

    frames: np.ndarray  # distinct frames of gt ∪ pred
    gt_bounds: np.ndarray  # (num_frames + 1,) row offsets into the frame-sorted gt rows
    pred_bounds: np.ndarray
    gt_obj: np.ndarray  # dense object index per frame-sorted gt row
    pred_hyp: np.ndarray
    gt_ids: np.ndarray  # dense index -> original id
    pred_ids: np.ndarray
    pair_bounds: np.ndarray  # (num_frames + 1,) offsets into the flat pair arrays
    pair_gt: np.ndarray  # frame-sorted gt row of each pair (row-major per frame)
    pair_pred: np.ndarray
    iou: np.ndarray


def _prepare(gt: MotSequence, pred: MotSequence) -> _Pairs:
    # A stable sort keeps file order within a frame, which fixes Hungarian tie-breaking as
    # py-motmetrics (fed from the same files) sees it.
    gt_order = np.argsort(gt.frames, kind="stable")
    pred_order = np.argsort(pred.frames, kind="stable")
    gt_frames, pred_frames = gt.frames[gt_order], pred.frames[pred_order]
    frames = np.union1d(gt_frames, pred_frames)
    gt_bounds = np.searchsorted(gt_frames, frames, side="left")
    gt_bounds = np.append(gt_bounds, len(gt_frames))
    pred_bounds = np.append(np.searchsorted(pred_frames, frames, side="left"), len(pred_frames))
    gt_ids, gt_obj = np.unique(gt.ids[gt_order], return_inverse=True)
    pred_ids, pred_hyp = np.unique(pred.ids[pred_order], return_inverse=True)

    n_gt = np.diff(gt_bounds)
    n_pred = np.diff(pred_bounds)
    sizes = n_gt * n_pred
    pair_bounds = np.concatenate([[0], np.cumsum(sizes)])
    frame_of_pair = np.repeat(np.arange(len(frames)), sizes)
    local = np.arange(pair_bounds[-1]) - pair_bounds[frame_of_pair]
    width = n_pred[frame_of_pair]
    pair_gt = gt_bounds[frame_of_pair] + local // np.maximum(width, 1)
    pair_pred = pred_bounds[frame_of_pair] + local % np.maximum(width, 1)

    gt_xyxy = gt.xyxy[gt_order]
    pred_xyxy = pred.xyxy[pred_order]
    iou = _paired_iou(gt_xyxy[pair_gt], pred_xyxy[pair_pred])
    return _Pairs(
        frames,
        gt_bounds,
        pred_bounds,
        gt_obj.reshape(-1),
        pred_hyp.reshape(-1),
        gt_ids,
        pred_ids,
        pair_bounds,
        pair_gt,
        pair_pred,
        iou,
    )


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[k] with b[k]: the same arithmetic as :func:`box_iou`, over matching rows only."""
    if len(a) == 0:
        return np.zeros(0)
    inter = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    inter = inter.prod(axis=1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _min_cost_matching(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-cost matching with NaN marking forbidden pairs, as py-motmetrics solves it with scipy.

    Forbidden pairs get a cost so large that using one is always worse than any matching with
    fewer of them; the solver's pairs on forbidden edges are then dropped. Building the same
    matrix keeps scipy's tie-breaking identical to py-motmetrics'.
    """
    valid = ~np.isnan(dist)
    if not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if valid.all():
        costs = dist
    else:
        c = np.abs(dist[valid]).max() + 1
        costs = np.where(valid, dist, 2 * min(dist.shape) * c + 1)
    rows, cols = linear_sum_assignment(costs)
    keep = valid[rows, cols]
    return rows[keep], cols[keep]


@dataclass
class _Clear:
    gt_hyp: np.ndarray  # matched dense hypothesis per frame-sorted gt row, -1 when missed
    gt_dist: np.ndarray  # 1 - IoU of the match, NaN when missed
    gt_switch: np.ndarray  # bool: the match is a switch
    switch_events: list[SwitchEvent]


def _clear_matching(p: _Pairs, max_distance: float) -> _Clear:
    """py-motmetrics' MOTAccumulator.update over every frame: keep, then Hungarian, then misses."""
    n_gt_rows = p.gt_bounds[-1]
    gt_hyp = np.full(n_gt_rows, -1, np.int64)
    gt_dist = np.full(n_gt_rows, np.nan)
    gt_switch = np.zeros(n_gt_rows, bool)
    last_hyp = np.full(len(p.gt_ids), -1, np.int64)  # an object's hypothesis at its last match
    slot_of_hyp = np.full(len(p.pred_ids) + 1, -1, np.int64)  # last entry absorbs "no hypothesis"
    dist_all = 1.0 - p.iou
    dist_all[dist_all > max_distance] = np.nan
    events: list[SwitchEvent] = []

    for f in range(len(p.frames)):
        g0, g1 = p.gt_bounds[f], p.gt_bounds[f + 1]
        h0, h1 = p.pred_bounds[f], p.pred_bounds[f + 1]
        if g0 == g1 or h0 == h1:
            continue
        objs = p.gt_obj[g0:g1]
        hyps = p.pred_hyp[h0:h1]
        dist = dist_all[p.pair_bounds[f] : p.pair_bounds[f + 1]].reshape(g1 - g0, h1 - h0)

        # 1. Keep last matches still within reach; where two objects last held the same
        #    hypothesis, the first in frame order takes it.
        slot_of_hyp[hyps] = np.arange(len(hyps))
        prev = last_hyp[objs]
        slots = slot_of_hyp[prev]  # prev == -1 reads the "no hypothesis" entry
        rows = np.flatnonzero(slots >= 0)
        rows = rows[~np.isnan(dist[rows, slots[rows]])]
        _, first = np.unique(slots[rows], return_index=True)
        kept_rows, kept_cols = rows[first], slots[rows[first]]
        slot_of_hyp[hyps] = -1

        row_done = np.zeros(len(objs), bool)
        col_done = np.zeros(len(hyps), bool)
        row_done[kept_rows] = True
        col_done[kept_cols] = True

        # 2. Hungarian on the rest; a match to another hypothesis than last time is a switch.
        if row_done.all() or col_done.all():
            new_rows = new_cols = np.zeros(0, np.int64)
        else:
            rest = dist.copy()
            rest[row_done, :] = np.nan
            rest[:, col_done] = np.nan
            new_rows, new_cols = _min_cost_matching(rest)
        new_objs, new_hyps = objs[new_rows], hyps[new_cols]
        switched = (last_hyp[new_objs] >= 0) & (last_hyp[new_objs] != new_hyps)
        frame = int(p.frames[f])
        for o, old, new in zip(
            new_objs[switched], last_hyp[new_objs[switched]], new_hyps[switched], strict=True
        ):
            events.append(
                SwitchEvent(frame, int(p.gt_ids[o]), int(p.pred_ids[old]), int(p.pred_ids[new]))
            )
        last_hyp[new_objs] = new_hyps

        all_rows = np.concatenate([kept_rows, new_rows])
        all_cols = np.concatenate([kept_cols, new_cols])
        gt_hyp[g0 + all_rows] = hyps[all_cols]
        gt_dist[g0 + all_rows] = dist[all_rows, all_cols]
        gt_switch[g0 + new_rows[switched]] = True

    return _Clear(gt_hyp, gt_dist, gt_switch, events)


def _fragmentations_and_coverage(p: _Pairs, clear: _Clear) -> tuple[int, np.ndarray]:
    """(fragmentations, tracked fraction per object) as py-motmetrics counts them.

    A fragmentation is a tracked -> missed transition between an object's first and last
    tracked frame (frames where the object is absent do not count).
    """
    n_obj = len(p.gt_ids)
    gt_frame_index = np.repeat(np.arange(len(p.frames)), np.diff(p.gt_bounds))
    order = np.lexsort((gt_frame_index, p.gt_obj))
    obj = p.gt_obj[order]
    tracked = clear.gt_hyp[order] >= 0
    position = np.arange(len(order))
    last_tracked = np.full(n_obj, -1, np.int64)
    np.maximum.at(last_tracked, obj[tracked], position[tracked])
    drop = np.zeros(len(order), bool)
    drop[1:] = (obj[1:] == obj[:-1]) & tracked[:-1] & ~tracked[1:]
    fragmentations = int((drop & (position < last_tracked[obj])).sum())
    seen = np.bincount(p.gt_obj, minlength=n_obj)
    hit = np.bincount(p.gt_obj, weights=clear.gt_hyp >= 0, minlength=n_obj)
    return fragmentations, hit / np.maximum(seen, 1)


def _identity_counts(p: _Pairs, max_distance: float) -> tuple[int, int, int]:
    """(IDTP, IDFP, IDFN) from the global one-to-one id assignment maximising shared frames."""
    n_gt, n_pred = p.gt_bounds[-1], p.pred_bounds[-1]
    close = (1.0 - p.iou) <= max_distance
    keys = p.gt_obj[p.pair_gt[close]] * len(p.pred_ids) + p.pred_hyp[p.pair_pred[close]]
    pair_keys, together = np.unique(keys, return_counts=True)
    if len(pair_keys) == 0:
        return 0, int(n_pred), int(n_gt)
    objs, obj_index = np.unique(pair_keys // len(p.pred_ids), return_inverse=True)
    hyps, hyp_index = np.unique(pair_keys % len(p.pred_ids), return_inverse=True)
    shared = np.zeros((len(objs), len(hyps)))
    shared[obj_index, hyp_index] = together
    rows, cols = linear_sum_assignment(shared, maximize=True)
    idtp = int(shared[rows, cols].sum())
    return idtp, int(n_pred) - idtp, int(n_gt) - idtp


def _hota(p: _Pairs) -> HotaDetail:
    """TrackEval's HOTA for one sequence, vectorised over frames and alphas."""
    n_gt, n_pred = int(p.gt_bounds[-1]), int(p.pred_bounds[-1])
    alphas = HOTA_ALPHAS
    zeros = np.zeros(len(alphas))
    if n_pred == 0 or n_gt == 0:
        return _hota_final(alphas, zeros, zeros + n_gt, zeros + n_pred, zeros, zeros + 1.0)

    n_hyp_ids = len(p.pred_ids)
    gt_count = np.bincount(p.gt_obj, minlength=len(p.gt_ids)).astype(float)
    pred_count = np.bincount(p.pred_hyp, minlength=n_hyp_ids).astype(float)
    sim = p.iou
    pair_obj, pair_hyp = p.gt_obj[p.pair_gt], p.pred_hyp[p.pair_pred]

    # Global alignment: per frame, each pair's similarity over its "soft union" in that frame.
    row_sum = np.bincount(p.pair_gt, weights=sim, minlength=n_gt)
    col_sum = np.bincount(p.pair_pred, weights=sim, minlength=n_pred)
    denom = row_sum[p.pair_gt] + col_sum[p.pair_pred] - sim
    soft = np.zeros_like(sim)
    ok = denom > 0 + _EPS
    soft[ok] = sim[ok] / denom[ok]
    keys = pair_obj * n_hyp_ids + pair_hyp
    unique_keys, key_index = np.unique(keys, return_inverse=True)
    potential = np.bincount(key_index, weights=soft, minlength=len(unique_keys))
    key_obj, key_hyp = unique_keys // n_hyp_ids, unique_keys % n_hyp_ids
    alignment = potential / (gt_count[key_obj] + pred_count[key_hyp] - potential)
    score = alignment[key_index] * sim

    # Per frame, match to maximise alignment x similarity.
    matched: list[np.ndarray] = []
    for f in range(len(p.frames)):
        a, b = p.pair_bounds[f], p.pair_bounds[f + 1]
        if a == b:
            continue
        n_rows = p.gt_bounds[f + 1] - p.gt_bounds[f]
        block = score[a:b].reshape(n_rows, -1)
        rows, cols = linear_sum_assignment(-block)
        matched.append(a + rows * block.shape[1] + cols)
    match = np.concatenate(matched) if matched else np.zeros(0, np.int64)
    match_sim = sim[match]
    match_key = keys[match]

    hit = match_sim[None, :] >= alphas[:, None] - _EPS  # (alphas, matches)
    tp = hit.sum(axis=1).astype(float)
    loc_sum = (hit * match_sim[None, :]).sum(axis=1)
    match_keys, match_index = np.unique(match_key, return_inverse=True)
    counts = np.zeros((len(alphas), len(match_keys)))
    for a in range(len(alphas)):
        counts[a] = np.bincount(match_index[hit[a]], minlength=len(match_keys))
    union = gt_count[match_keys // n_hyp_ids] + pred_count[match_keys % n_hyp_ids] - counts
    ass_a = (counts * counts / np.maximum(1, union)).sum(axis=1) / np.maximum(1, tp)
    loc_a = np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp)
    return _hota_final(alphas, tp, n_gt - tp, n_pred - tp, ass_a, loc_a)


def _hota_final(alphas, tp, fn, fp, ass_a, loc_a) -> HotaDetail:
    det_a = tp / np.maximum(1, tp + fn + fp)
    return HotaDetail(alphas, tp, fn, fp, det_a, ass_a, loc_a, np.sqrt(det_a * ass_a))


def _per_frame(p: _Pairs, clear: _Clear) -> PerFrameCounts:
    def per_frame_sum(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        sizes = np.diff(bounds)
        index = np.repeat(np.arange(len(sizes)), sizes)
        return np.bincount(index, weights=values, minlength=len(sizes)).astype(np.int64)

    num_objects = np.diff(p.gt_bounds)
    num_predictions = np.diff(p.pred_bounds)
    matches = per_frame_sum(clear.gt_hyp >= 0, p.gt_bounds)
    return PerFrameCounts(
        frames=p.frames.copy(),
        num_objects=num_objects,
        num_predictions=num_predictions,
        num_matches=matches,
        num_switches=per_frame_sum(clear.gt_switch, p.gt_bounds),
        num_false_positives=num_predictions - matches,
        num_misses=num_objects - matches,
    )


def _max_distance(iou_threshold: float) -> float:
    if not 0.0 < iou_threshold <= 1.0:
        raise CowdemoError(f"IoU threshold {iou_threshold} is outside (0, 1]: use e.g. 0.5.")
    return 1.0 - iou_threshold


def evaluate_tracking(
    gt: MotSequence, pred: MotSequence, iou_threshold: float = 0.5, name: str | None = None
) -> TrackingResult:
    """CLEAR MOT, Identity and HOTA metrics of ``pred`` against ``gt`` (one sequence).

    Boxes match when IoU >= ``iou_threshold`` (py-motmetrics' ``distth = 1 - iou_threshold``).
    HOTA does not use the threshold: it averages over :data:`HOTA_ALPHAS` as TrackEval does.
    """
    max_distance = _max_distance(iou_threshold)
    p = _prepare(gt, pred)
    clear = _clear_matching(p, max_distance)
    fragmentations, coverage = _fragmentations_and_coverage(p, clear)
    idtp, idfp, idfn = _identity_counts(p, max_distance)
    num_objects, num_predictions = len(gt), len(pred)
    num_detections = int((clear.gt_hyp >= 0).sum())
    num_switches = len(clear.switch_events)
    return TrackingResult(
        name=name if name is not None else (gt.name or pred.name),
        iou_threshold=iou_threshold,
        num_frames=len(p.frames),
        num_objects=num_objects,
        num_predictions=num_predictions,
        num_unique_objects=len(p.gt_ids),
        num_matches=num_detections - num_switches,
        num_switches=num_switches,
        num_false_positives=num_predictions - num_detections,
        num_misses=num_objects - num_detections,
        num_fragmentations=fragmentations,
        mostly_tracked=int((coverage >= 0.8).sum()),
        partially_tracked=int(((coverage >= 0.2) & (coverage < 0.8)).sum()),
        mostly_lost=int((coverage < 0.2).sum()),
        motp_distance_sum=float(np.nansum(clear.gt_dist)),
        idtp=idtp,
        idfp=idfp,
        idfn=idfn,
        hota_detail=_hota(p),
        switch_events=clear.switch_events,
        per_frame=_per_frame(p, clear),
    )


def combine_results(results: Sequence[TrackingResult], name: str = "OVERALL") -> TrackingResult:
    """Several sequences as one, like py-motmetrics' ``OVERALL`` row and TrackEval's combined row.

    Counts add up; ratios are recomputed from the summed counts (MOTP weighted by matches);
    HOTA's AssA and LocA are averaged weighted by each sequence's true positives per alpha.
    """
    if not results:
        raise CowdemoError("No sequences to combine: evaluate at least one sequence first.")
    thresholds = {r.iou_threshold for r in results}
    if len(thresholds) > 1:
        raise CowdemoError(
            f"Cannot combine results at different IoU thresholds {sorted(thresholds)}."
        )

    def total(attr: str) -> Any:
        return sum(getattr(r, attr) for r in results)

    details = [r.hota_detail for r in results]
    tp = sum(d.tp for d in details)
    # TrackEval's rules, floors included: an alpha with no true positive anywhere gets AssA 0
    # and LocA 1, as it does within one sequence.
    ass_a = sum(d.ass_a * d.tp for d in details) / np.maximum(1.0, tp)
    loc_a = np.maximum(1e-10, sum(d.loc_a * d.tp for d in details)) / np.maximum(1e-10, tp)
    hota = _hota_final(
        HOTA_ALPHAS, tp, sum(d.fn for d in details), sum(d.fp for d in details), ass_a, loc_a
    )
    counted = (
        "num_frames",
        "num_objects",
        "num_predictions",
        "num_unique_objects",
        "num_matches",
        "num_switches",
        "num_false_positives",
        "num_misses",
        "num_fragmentations",
        "mostly_tracked",
        "partially_tracked",
        "mostly_lost",
        "motp_distance_sum",
        "idtp",
        "idfp",
        "idfn",
    )
    return TrackingResult(
        name=name,
        iou_threshold=results[0].iou_threshold,
        hota_detail=hota,
        switch_events=[],
        per_frame=None,
        **{attr: total(attr) for attr in counted},
    )


def evaluate_many(
    sequences: Mapping[str, tuple[MotSequence, MotSequence]],
    iou_threshold: float = 0.5,
    overall: bool = True,
) -> dict[str, TrackingResult]:
    """``{name: (gt, pred)}`` -> ``{name: result}``, plus ``"OVERALL"`` when ``overall``."""
    results = {
        seq_name: evaluate_tracking(gt, pred, iou_threshold, name=seq_name)
        for seq_name, (gt, pred) in sequences.items()
    }
    if overall and results:
        results["OVERALL"] = combine_results(list(results.values()))
    return results


def id_switch_events(
    gt: MotSequence, pred: MotSequence, iou_threshold: float = 0.5
) -> list[SwitchEvent]:
    """Every identity switch as (frame, gt id, old tracker id, new tracker id), in frame order."""
    p = _prepare(gt, pred)
    return _clear_matching(p, _max_distance(iou_threshold)).switch_events


# --------------------------------------------------------------------------------------------
# Without ground truth
# --------------------------------------------------------------------------------------------
@dataclass
class TrackSummary:
    """A tracker's output at a glance.

    Attributes:
        track_ids: sorted distinct ids; the per-track arrays below follow this order.
        first_frames, last_frames: where each track starts and ends.
        lengths: frames in which each track has a box.
        frames: every frame with at least one box; ``counts``: boxes in each of those frames.
    """

    track_ids: np.ndarray
    first_frames: np.ndarray
    last_frames: np.ndarray
    lengths: np.ndarray
    frames: np.ndarray
    counts: np.ndarray

    @property
    def num_tracks(self) -> int:
        return len(self.track_ids)

    @property
    def spans(self) -> np.ndarray:
        """Frames from a track's first to its last box, gaps included."""
        return self.last_frames - self.first_frames + 1

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean()) if len(self.lengths) else 0.0


def track_summary(pred: MotSequence) -> TrackSummary:
    """Number of tracks, their lifetimes, and the number of boxes per frame."""
    ids, index, lengths = np.unique(pred.ids, return_inverse=True, return_counts=True)
    first = np.full(len(ids), np.iinfo(np.int64).max, np.int64)
    last = np.full(len(ids), np.iinfo(np.int64).min, np.int64)
    np.minimum.at(first, index, pred.frames)
    np.maximum.at(last, index, pred.frames)
    frames, counts = np.unique(pred.frames, return_counts=True)
    return TrackSummary(ids, first, last, lengths, frames, counts)


def suspected_switches(
    pred: MotSequence, max_gap_frames: int = 5, max_distance: float = 50.0
) -> list[SuspectedSwitch]:
    """Places where a track ends and another begins close by soon after: likely id switches.

    A track ending in frame ``f`` and one starting in frame ``f + 1 .. f + max_gap_frames``
    whose first box centre lies within ``max_distance`` pixels of the ended track's last centre
    form a candidate. Each track is used at most once, closest candidates first, so one lost
    cow reported twice does not hide another. Sorted by frame.
    """
    if len(pred) == 0:
        return []
    order = np.lexsort((pred.frames, pred.ids))
    ids = pred.ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)] - 1
    track_ids = ids[starts]
    first_frame, last_frame = pred.frames[order[starts]], pred.frames[order[ends]]
    first_center, last_center = pred.centers[order[starts]], pred.centers[order[ends]]

    by_start = np.argsort(first_frame, kind="stable")
    sorted_starts = first_frame[by_start]
    candidates: list[tuple[float, int, int, int]] = []  # (distance, frame, ended, started)
    for e in range(len(track_ids)):
        lo = np.searchsorted(sorted_starts, last_frame[e] + 1, side="left")
        hi = np.searchsorted(sorted_starts, last_frame[e] + max_gap_frames, side="right")
        started = by_start[lo:hi]
        if len(started) == 0:
            continue
        distance = np.linalg.norm(first_center[started] - last_center[e], axis=1)
        for s, d in zip(started, distance, strict=True):
            if d <= max_distance:
                candidates.append((float(d), int(first_frame[s]), e, int(s)))

    used_ended: set[int] = set()
    used_started: set[int] = set()
    found: list[SuspectedSwitch] = []
    for distance, frame, e, s in sorted(candidates):
        if e in used_ended or s in used_started:
            continue
        used_ended.add(e)
        used_started.add(s)
        found.append(SuspectedSwitch(frame, int(track_ids[e]), int(track_ids[s]), distance))
    return sorted(found)
