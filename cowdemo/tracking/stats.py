"""How good the tracks are, and where ids switch.

With ground truth (a MOTChallenge gt.txt, or the synthetic video's exact tracks) the engine in
:mod:`cowdemo.evaluation.tracking` gives CLEAR MOT (MOTA, MOTP, switches, fragmentations,
mostly tracked/partially/lost, FP, FN), Identity (IDF1, IDP, IDR) and HOTA (DetA, AssA), and
every switch with its frame. Without ground truth the tracks are described on their own: how
many there are against the most cows seen at once, how long they live, and suspected switches
(a track ending where another starts a few frames later)::

    report = tracking_report(tracks, gt=read_mot("gt.txt"))
    report.metrics()["ID switches"], report.events()[0].frame
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import (
    MotSequence,
    SuspectedSwitch,
    SwitchEvent,
    TrackingResult,
    TrackSummary,
    evaluate_tracking,
    suspected_switches,
    track_summary,
)
from cowdemo.tracking.detection import VideoDetections
from cowdemo.tracking.settings import TrackerSettings
from cowdemo.tracking.tracker import Tracks

#: Suspected switches: a track starting within this many processed frames after another ended,
#: plus the hit counter (how long a lost track lingers) and the initialisation delay (which
#: hides a new track's first boxes)...
SUSPECT_GAP_FRAMES = 5
#: ... with its first box centre within this share of the frame diagonal of the other's last.
SUSPECT_DISTANCE = 0.1

#: What each row of the stats table means, in plain words.
METRIC_HELP: dict[str, str] = {
    "MOTA": "Multi-object tracking accuracy: 1 - (misses + false positives + id switches) / "
    "true boxes. 1 is perfect; it can go below 0.",
    "MOTP": "Mean 1 - IoU of matched boxes (py-motmetrics): how well boxes fit. Lower is better.",
    "IDF1": "Share of boxes given the right identity, over the whole video (identity F1).",
    "IDP": "Identity precision: tracked boxes carrying the right identity.",
    "IDR": "Identity recall: true boxes covered by the right identity.",
    "ID switches": "Times a cow's track id changed from one match to the next.",
    "Fragmentations": "Times a cow's track was interrupted (tracked, then missed).",
    "Mostly tracked": "Cows tracked in at least 80% of their frames.",
    "Partially tracked": "Cows tracked in 20-80% of their frames.",
    "Mostly lost": "Cows tracked in less than 20% of their frames.",
    "False positives": "Tracked boxes matching no true cow.",
    "Misses (FN)": "True boxes no track covered.",
    "HOTA": "Higher-order tracking accuracy: the balance of detection and association, "
    "averaged over overlap thresholds (TrackEval).",
    "DetA": "HOTA's detection accuracy: how well cows are found.",
    "AssA": "HOTA's association accuracy: how well each cow keeps one id.",
    "Recall": "True boxes that were tracked.",
    "Precision": "Tracked boxes that were true.",
    "True cows": "Distinct cows in the ground truth.",
    "Tracks": "Distinct track ids. Ideally as many as there are cows.",
    "Most cows in a frame": "The largest number of tracked boxes in one frame.",
    "Extra tracks": "Tracks beyond the most cows seen at once: each one is a cow that got a new "
    "id at least once (or a false detection that was tracked).",
    "Mean track length": "Average number of processed frames a track has a box in.",
    "Shortest track": "Frames of the shortest track (short tracks are often false detections "
    "or the pieces of a switched cow).",
    "Suspected switches": "A track ending and another starting close by soon after (within the "
    f"hit counter + initialisation delay + {SUSPECT_GAP_FRAMES} processed frames, and a tenth "
    "of the frame diagonal): likely the same cow with a new id.",
    "Frames": "Processed frames.",
    "Tracked boxes": "Boxes carrying a track id, over all frames.",
}


@dataclass(frozen=True)
class SwitchMark:
    """One place to look at: an id switch (with ground truth) or a suspected one (without)."""

    frame: int
    kind: str  # "switch" | "suspected"
    old_id: int
    new_id: int
    text: str


@dataclass
class TrackingReport:
    """Stats of one set of tracks, with ground truth or without."""

    tracks: Tracks
    summary: TrackSummary
    suspected: list[SuspectedSwitch]
    result: TrackingResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.tracks.label

    @property
    def has_ground_truth(self) -> bool:
        return self.result is not None

    @property
    def num_switches(self) -> int:
        """ID switches against ground truth, else the suspected ones."""
        return self.result.num_switches if self.result else len(self.suspected)

    def metrics(self) -> dict[str, float | int]:
        """The stats table's rows, in order (names are keys of :data:`METRIC_HELP`)."""
        rows: dict[str, float | int] = {}
        r = self.result
        if r is not None:
            rows.update({
                "MOTA": r.mota, "MOTP": r.motp, "IDF1": r.idf1, "IDP": r.idp, "IDR": r.idr,
                "ID switches": r.num_switches, "Fragmentations": r.num_fragmentations,
                "Mostly tracked": r.mostly_tracked, "Partially tracked": r.partially_tracked,
                "Mostly lost": r.mostly_lost, "False positives": r.num_false_positives,
                "Misses (FN)": r.num_misses, "HOTA": r.hota, "DetA": r.det_a, "AssA": r.ass_a,
                "Recall": r.recall, "Precision": r.precision, "True cows": r.num_unique_objects,
            })  # fmt: skip
        s = self.summary
        most = int(s.counts.max()) if len(s.counts) else 0
        rows.update({
            "Tracks": s.num_tracks,
            "Most cows in a frame": most,
            "Extra tracks": max(0, s.num_tracks - most),
            "Mean track length": round(s.mean_length, 1),
            "Shortest track": int(s.lengths.min()) if len(s.lengths) else 0,
            "Suspected switches": len(self.suspected),
            "Frames": len(self.tracks),
            "Tracked boxes": int(s.counts.sum()),
        })  # fmt: skip
        return rows

    def events(self) -> list[SwitchMark]:
        """ID switches (with ground truth) or suspected switches (without), by frame."""
        if self.result is not None:
            return [_switch_mark(e) for e in self.result.switch_events]
        return [_suspect_mark(s) for s in self.suspected]

    def lifetimes(self) -> list[dict[str, int]]:
        """One row per track: id, first and last frame, frames with a box."""
        s = self.summary
        return [
            {"track": int(t), "first frame": int(a), "last frame": int(b), "frames": int(n)}
            for t, a, b, n in zip(s.track_ids, s.first_frames, s.last_frames, s.lengths)
        ]


def _switch_mark(e: SwitchEvent) -> SwitchMark:
    return SwitchMark(
        e.frame, "switch", e.old_pred_id, e.new_pred_id,
        f"frame {e.frame}: cow {e.gt_id} changed from track {e.old_pred_id} to {e.new_pred_id}",
    )  # fmt: skip


def _suspect_mark(s: SuspectedSwitch) -> SwitchMark:
    return SwitchMark(
        s.frame, "suspected", s.ended_id, s.started_id,
        f"frame {s.frame}: track {s.started_id} starts {s.distance:.0f} px from where track "
        f"{s.ended_id} ended",
    )  # fmt: skip


def suspect_gap(settings: TrackerSettings) -> int:
    """Processed frames between one track's last box and another's first within which the
    two are suspected to be one cow."""
    return settings.hit_counter_max + settings.delay + SUSPECT_GAP_FRAMES


def align_ground_truth(gt: MotSequence, tracks: Tracks) -> tuple[MotSequence, list[str]]:
    """Ground truth restricted to the processed frames (stride, maximum frames), without the
    rows MOTChallenge marks as ignored (conf 0); with notes on what was left out."""
    notes = []
    kept = gt[gt.confidences != 0]
    if len(kept) < len(gt):
        notes.append(f"{len(gt) - len(kept)} ground-truth rows marked ignore (conf 0) left out.")
    if not len(kept):
        raise CowdemoError("The ground truth has no boxes (every row is empty or ignored).")
    processed = np.asarray(tracks.frame_numbers)
    last_frame = int(tracks.meta.decoded)
    beyond = kept.frames > last_frame
    if beyond.all():
        raise CowdemoError(
            f"The ground truth starts at frame {int(kept.frames.min())} but the video has "
            f"{last_frame} frames: is it the ground truth of this video?"
        )
    if beyond.any():
        notes.append(
            f"The ground truth goes to frame {int(kept.frames.max())}, the video has "
            f"{last_frame} frames: is it the ground truth of this video?"
        )
    inside = kept[np.isin(kept.frames, processed)]
    if len(inside) < len(kept[~beyond]):
        notes.append(
            f"Scored on the {len(processed)} processed frames "
            f"(stride {tracks.meta.stride}); ground truth of skipped frames left out."
        )
    size_w, size_h = tracks.meta.size
    right = kept.tlwh[:, 0] + kept.tlwh[:, 2]
    bottom = kept.tlwh[:, 1] + kept.tlwh[:, 3]
    if len(kept) and (right.min() > size_w or bottom.min() > size_h):
        raise CowdemoError(
            f"Every ground-truth box lies outside the {size_w}x{size_h} video: is it the ground "
            "truth of this video (boxes must be in the video's pixels)?"
        )
    return inside, notes


def tracking_report(
    tracks: Tracks, gt: MotSequence | None = None, iou_threshold: float = 0.5
) -> TrackingReport:
    """Stats of ``tracks``: with ``gt``, every MOT metric and each switch's frame; always the
    track count, lifetimes and suspected switches."""
    pred = tracks.to_mot()
    width, height = tracks.meta.size
    suspected = suspected_switches(
        pred,
        max_gap_frames=suspect_gap(tracks.settings) * tracks.meta.stride,
        max_distance=SUSPECT_DISTANCE * math.hypot(width, height),
    )
    report = TrackingReport(tracks, track_summary(pred), suspected)
    if gt is not None:
        aligned, report.notes = align_ground_truth(gt, tracks)
        report.result = evaluate_tracking(aligned, pred, iou_threshold, name=tracks.label)
    return report


def nothing_tracked_reason(found: VideoDetections, settings: TrackerSettings) -> str | None:
    """Why the tracker got no box at all, in plain words with what the model did see, or
    None when it got some: "0 tracks" must never read like a clean result.

    e.g. "The model saw 14 person, 3 surfboard and no cow at score >= 0.5 (in 60 frames):
    try All classes, a lower score threshold, or a fine-tuned model."
    """
    from collections import Counter

    from cowdemo.tracking.tracker import trackable_mask

    if any(trackable_mask(d, settings).any() for d in found.detections if len(d)):
        return None
    threshold = settings.score_threshold
    wanted = " or ".join(settings.classes) if settings.classes else "box"
    above: Counter[str] = Counter()
    best = 0.0
    for dets in found.detections:
        if len(dets):
            best = max(best, float(dets.scores.max()))
            above.update(str(n) for n in dets.class_names[dets.scores >= threshold])
    frames = f"in {len(found)} frames"
    if above:
        seen = [f"{n} {name}" for name, n in above.most_common(5)]
        if len(above) > 5:
            seen.append(f"{sum(above.values()) - sum(n for _, n in above.most_common(5))} other")
        listed = ", ".join(seen[:-1]) + f" and {seen[-1]}" if len(seen) > 1 else seen[0]
        return (
            f"Nothing was tracked: the model saw {listed} and no {wanted} at score >= "
            f"{threshold:g} ({frames}). Try All classes, a lower score threshold, or a "
            "fine-tuned model."
        )
    if best > 0:
        return (
            f"Nothing was tracked: the model saw no box at score >= {threshold:g} ({frames}; "
            f"its best box scored {best:.2f}). Try a lower score threshold, or a fine-tuned "
            "model."
        )
    return (
        f"Nothing was tracked: the model found no box at all ({frames}). Is the video what "
        "you expected (cows in view, not too dark or small)? A fine-tuned model may help."
    )
