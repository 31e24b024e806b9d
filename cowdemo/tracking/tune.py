"""Find the best tracker settings on cached detections, with Optuna (TPE sampler).

The detector never runs again: each trial re-tracks the cached boxes of one or more videos
with other settings (distance and threshold, hit counter, initialisation delay,
re-identification and its thresholds, class awareness; or ByteTrack's own settings) and
scores the tracks. The settings in use are trial 1, so the best is never worse than them on
the part tuned on::

    result = tune_tracker(found, TrackerSettings(), gt=gt, objective="hota", trials=40)
    result.best, result.held_out["best"]["HOTA"], result.held_out["defaults"]["HOTA"]

Over-fitting guard: each video is split in time; trials are scored on the first part
(``split``, 60% by default) only, and the chosen settings and the settings in use are then
tracked on the held-out rest, which no trial saw, and reported side by side.

Objectives (all maximised):

* ``hota`` (default with ground truth), ``idf1``: the metric itself.
* ``switches``: fewest id switches against the ground truth, ties broken by IDF1 (so tracking
  nothing, which has no switches, does not win).
* ``proxy`` (without ground truth): NOT a tracking metric, an estimate built from what the
  tracks say about themselves, see :func:`proxy_score`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import MotSequence, suspected_switches
from cowdemo.tracking.detection import VideoDetections
from cowdemo.tracking.settings import DISTANCES, TrackerSettings
from cowdemo.tracking.stats import SUSPECT_DISTANCE, suspect_gap, tracking_report
from cowdemo.tracking.tracker import Tracks, track, trackable_mask

OBJECTIVES: dict[str, str] = {
    "hota": "HOTA against the ground truth (higher is better)",
    "idf1": "IDF1 against the ground truth (higher is better)",
    "switches": "fewest id switches against the ground truth, ties broken by IDF1",
    "proxy": "a proxy without ground truth: tracked share of the boxes minus penalties for "
    "suspected switches, extra tracks and interrupted tracks (not a real tracking metric)",
}

#: Weights of the proxy's penalties (see :func:`proxy_score`).
PROXY_WEIGHTS = {"suspected": 0.5, "extra": 0.25, "fragments": 0.1}

#: Distances the search picks from (the pair-by-pair ones are slow and rarely better).
SEARCH_DISTANCES = ("euclidean", "iou", "cityblock", "chebyshev")


@dataclass(frozen=True)
class TuneProgress:
    """What the progress bar shows after each trial."""

    done: int
    total: int
    best_value: float
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / self.done * (self.total - self.done) if self.done else math.nan

    @property
    def text(self) -> str:
        eta = f", about {self.eta_s:.0f} s left" if self.done < self.total else ""
        return f"trial {self.done}/{self.total}, best so far {self.best_value:.4f}{eta}"


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based; trial 1 is the settings in use
    settings: TrackerSettings
    value: float
    metrics: dict[str, float]


@dataclass
class TuneResult:
    """The search, its best settings, and both settings on the held-out part."""

    objective: str
    trials: list[Trial]
    defaults: TrackerSettings
    best: TrackerSettings
    held_out: dict[str, dict[str, float]]  # "defaults" / "best" -> metrics on the held-out part
    tune_frames: int  # processed frames tuned on (all videos)
    held_out_frames: int
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def is_proxy(self) -> bool:
        return self.objective == "proxy"

    @property
    def objective_name(self) -> str:
        """The objective as shown: a proxy is always called one."""
        return "proxy score (no ground truth)" if self.is_proxy else self.objective.upper()

    @property
    def best_trial(self) -> Trial:
        return max(self.trials, key=lambda t: (t.value, -t.number))

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The best ``n`` trials as table rows (value, settings in one line)."""
        ranked = sorted(self.trials, key=lambda t: (-t.value, t.number))[:n]
        return [{"trial": t.number, self.objective_name: round(t.value, 4),
                 "settings": t.settings.describe(),
                 **{k: round(v, 4) for k, v in t.metrics.items() if k != "proxy"}}
                for t in ranked]  # fmt: skip

    def held_out_table(self) -> list[dict[str, Any]]:
        """Rows metric / settings in use / best found, on the held-out part."""
        names = list(self.held_out["defaults"])
        return [{"metric": n, "settings in use": self.held_out["defaults"][n],
                 "best found": self.held_out["best"][n]} for n in names]  # fmt: skip

    def summary(self) -> str:
        """One line for the CLI and the page."""
        key = HELD_OUT_KEY[self.objective]
        a, b = self.held_out["defaults"][key], self.held_out["best"][key]
        return (
            f"{len(self.trials)} trials on {self.tune_frames} frames, objective "
            f"{self.objective_name}; on the {self.held_out_frames} held-out frames: {key} "
            f"{_fmt(b)} with the best settings vs {_fmt(a)} with the settings in use"
        )


#: The headline metric of the held-out comparison per objective.
HELD_OUT_KEY = {"hota": "HOTA", "idf1": "IDF1", "switches": "ID switches",
                "proxy": "Suspected switches"}  # fmt: skip


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not float(value).is_integer() else (
        f"{value:g}")  # fmt: skip


# --------------------------------------------------------------------------------------------
def split_detections(found: VideoDetections, start: int, stop: int) -> VideoDetections:
    """Processed frames ``start:stop`` of a pass (the tracker then starts fresh there)."""
    return VideoDetections(
        frame_numbers=found.frame_numbers[start:stop],
        times=found.times[start:stop],
        detections=found.detections[start:stop],
        signatures=found.signatures[start:stop],
        meta=found.meta,
        model=found.model,
        key=f"{found.key}[{start}:{stop}]",
        cached=found.cached,
    )


def proxy_score(tracks: Tracks, found: VideoDetections, gap_settings: TrackerSettings) -> dict:
    """The objective without ground truth, from what the tracks say about themselves:

    ``coverage`` (tracked boxes / boxes the tracker was given)
    - 0.5 x suspected switches per cow (the most cows tracked in one frame)
    - 0.25 x tracks beyond that count, per cow
    - 0.1 x interruptions (a track missing frames between its first and last) per track.

    Suspected switches are counted with ``gap_settings``'s window for every trial (a window
    that grew with the trial's own hit counter would reward short memories). A proxy, not a
    metric: it cannot see two cows swapping ids in one frame, and it likes long tracks.
    """
    pred = tracks.to_mot()
    given = sum(int(trackable_mask(d, tracks.settings).sum()) for d in found.detections)
    tracked = len(pred)
    counts = np.asarray([len(d) for d in tracks.detections])
    most = int(counts.max()) if len(counts) else 0
    ids = np.unique(pred.ids) if tracked else np.zeros(0)
    width, height = tracks.meta.size
    suspected = len(suspected_switches(
        pred, max_gap_frames=suspect_gap(gap_settings) * tracks.meta.stride,
        max_distance=SUSPECT_DISTANCE * math.hypot(width, height),
    )) if tracked else 0  # fmt: skip
    index = {int(f): i for i, f in enumerate(tracks.frame_numbers)}
    fragments = 0
    for t in ids:
        frames = sorted(index[int(f)] for f in pred.frames[pred.ids == t])
        fragments += int(np.count_nonzero(np.diff(frames) > 1))
    coverage = tracked / given if given else 0.0
    cows = max(1, most)
    value = (
        coverage
        - PROXY_WEIGHTS["suspected"] * suspected / cows
        - PROXY_WEIGHTS["extra"] * max(0, len(ids) - most) / cows
        - PROXY_WEIGHTS["fragments"] * fragments / max(1, len(ids))
    )
    return {"proxy": value, "coverage": coverage, "suspected switches": suspected,
            "tracks": len(ids), "most cows in a frame": most,
            "interruptions": fragments}  # fmt: skip


def _gt_part(gt: MotSequence, part: VideoDetections) -> MotSequence:
    return gt[np.isin(gt.frames, part.frame_numbers)]


def evaluate_settings(
    parts: Sequence[tuple[VideoDetections, MotSequence | None]],
    settings: TrackerSettings,
    objective: str,
    gap_settings: TrackerSettings,
) -> tuple[float, dict[str, float]]:
    """The objective's value and the metrics behind it, over every (detections, truth) part;
    metrics are weighted by each part's frames."""
    values, metrics, weights = [], [], []
    for found, gt in parts:
        tracks = track(found, settings)
        if objective == "proxy":
            row = proxy_score(tracks, found, gap_settings)
            value = row["proxy"]
        else:
            r = tracking_report(tracks, gt).result
            row = {"HOTA": r.hota, "IDF1": r.idf1, "MOTA": r.mota,
                   "ID switches": r.num_switches}  # fmt: skip
            row = {k: (0.0 if isinstance(v, float) and v != v else float(v))
                   for k, v in row.items()}  # fmt: skip
            value = {"hota": row["HOTA"], "idf1": row["IDF1"],
                     "switches": -row["ID switches"] + row["IDF1"]}[objective]  # fmt: skip
        values.append(value)
        metrics.append(row)
        weights.append(len(found))
    w = np.asarray(weights, float) / sum(weights)
    merged = {k: float(sum(wi * m[k] for wi, m in zip(w, metrics))) for k in metrics[0]}
    for count in ("ID switches", "suspected switches", "tracks", "interruptions"):
        if count in merged:  # counts add up over videos
            merged[count] = float(sum(m[count] for m in metrics))
    return float(np.dot(w, values)), merged


def held_out_metrics(
    parts: Sequence[tuple[VideoDetections, MotSequence | None]], settings: TrackerSettings
) -> dict[str, float]:
    """The stats table's headline rows on the held-out parts (summed counts, frame-weighted
    rates)."""
    rows = []
    for found, gt in parts:
        report = tracking_report(track(found, settings), gt)
        rows.append((len(found), report.metrics()))
    keys = ["HOTA", "IDF1", "MOTA", "ID switches"] if parts[0][1] is not None else []
    keys += ["Tracks", "Suspected switches", "Tracked boxes"]
    total = sum(n for n, _ in rows)
    out: dict[str, float] = {}
    for k in keys:
        if k in ("ID switches", "Tracks", "Suspected switches", "Tracked boxes"):
            out[k] = int(sum(m[k] for _, m in rows))
        else:
            out[k] = round(float(sum(n * m[k] for n, m in rows) / total), 4)
    return out


def suggest_settings(trial, base: TrackerSettings, families: Sequence[str]) -> TrackerSettings:
    """One point of the search space (Optuna ``trial``); score threshold and classes stay."""
    family = trial.suggest_categorical("family", list(families)) if len(families) > 1 else (
        families[0])  # fmt: skip
    if family == "bytetrack":
        return base.with_changes(
            family="bytetrack",
            bytetrack_activation=trial.suggest_float("bytetrack_activation", 0.05, 0.9, step=0.01),
            bytetrack_lost_buffer=trial.suggest_int("bytetrack_lost_buffer", 1, 90),
            bytetrack_match=trial.suggest_float("bytetrack_match", 0.3, 0.99, step=0.01),
            bytetrack_min_frames=trial.suggest_int("bytetrack_min_frames", 1, 5),
        )
    distance = trial.suggest_categorical("distance", list(SEARCH_DISTANCES))
    spec = DISTANCES[distance]
    if spec.max_threshold is not None:
        threshold = trial.suggest_float(f"threshold_{distance}", spec.step, spec.max_threshold,
                                        step=0.01)  # fmt: skip
    else:  # pixels: from a fifth to five times the default, log-uniform, whole pixels shown
        d = spec.default_threshold
        threshold = round(trial.suggest_float(f"threshold_{distance}", d / 5, d * 5, log=True),
                          1)  # fmt: skip
    hits = trial.suggest_int("hit_counter_max", 2, 60, log=True)
    delay = trial.suggest_int("initialization_delay", 0, hits - 1) if hits > 1 else 0
    reid = trial.suggest_categorical("reid", [False, True]) and delay >= 1
    changes: dict[str, Any] = {}
    if reid:
        changes = {
            "reid_distance_threshold": trial.suggest_float("reid_distance_threshold", 0.05, 0.6,
                                                           step=0.01),
            "reid_hit_counter_max": trial.suggest_int("reid_hit_counter_max", 5, 300, log=True),
        }
    return base.with_changes(
        family="norfair", distance=distance, distance_threshold=float(threshold),
        hit_counter_max=hits, initialization_delay=delay, reid=bool(reid),
        class_aware=trial.suggest_categorical("class_aware", [False, True]), **changes,
    )  # fmt: skip


def _enqueue_base(study, base: TrackerSettings, families: Sequence[str]) -> None:
    """Trial 1 = the settings in use (when they are in the search space)."""
    if base.family not in families:
        return
    params: dict[str, Any] = {"family": base.family} if len(families) > 1 else {}
    if base.family == "bytetrack":
        params |= {k: getattr(base, k) for k in ("bytetrack_activation", "bytetrack_lost_buffer",
                                                 "bytetrack_match", "bytetrack_min_frames")}
    else:
        if base.distance not in SEARCH_DISTANCES:
            return
        params |= {"distance": base.distance, f"threshold_{base.distance}":
                   base.distance_threshold, "hit_counter_max": base.hit_counter_max,
                   "initialization_delay": base.delay, "reid": base.reid,
                   "class_aware": base.class_aware}  # fmt: skip
        if base.reid:
            params |= {"reid_distance_threshold": base.reid_distance_threshold,
                       "reid_hit_counter_max": base.reid_hit_counter_max}
    study.enqueue_trial(params, skip_if_exists=True)


def tune_tracker(
    videos: VideoDetections | Sequence[VideoDetections],
    base: TrackerSettings | None = None,
    *,
    gt: MotSequence | Sequence[MotSequence] | None = None,
    objective: str | None = None,
    trials: int = 40,
    split: float = 0.6,
    families: Sequence[str] = ("norfair",),
    seed: int = 0,
    progress: Callable[[TuneProgress], None] | None = None,
) -> TuneResult:
    """Search tracker settings on cached detections (see the module docstring).

    Args:
        videos: one detection pass, or several (tuned on together).
        base: the settings in use: trial 1, the held-out comparison's baseline, and the score
            threshold and classes every trial keeps.
        gt: ground truth per video (same order), or None to tune the proxy.
        objective: ``hota`` (default with ``gt``), ``idf1``, ``switches``; ``proxy`` (the only
            one without ``gt``).
        trials: how many settings to try (trial 1 included).
        split: share of each video's processed frames tuned on; the rest is held out.
        families: tracker families searched (``norfair``, ``bytetrack``).
        seed: the sampler's seed (same seed, same trials).
        progress: called after each trial.
    """
    import optuna

    base = base or TrackerSettings()
    videos = [videos] if isinstance(videos, VideoDetections) else list(videos)
    truths: list[MotSequence | None]
    if gt is None:
        truths = [None] * len(videos)
    else:
        truths = [gt] if isinstance(gt, MotSequence) else list(gt)
    if not videos or len(truths) != len(videos):
        raise CowdemoError(f"Give one ground truth per video: {len(videos)} videos, "
                           f"{len(truths)} ground truths.")  # fmt: skip
    objective = objective or ("proxy" if gt is None else "hota")
    if objective not in OBJECTIVES:
        raise CowdemoError(f"Unknown objective {objective!r}: choose one of "
                           f"{', '.join(OBJECTIVES)}.")  # fmt: skip
    if gt is None and objective != "proxy":
        raise CowdemoError(f"The {objective} objective needs ground truth; without it the "
                           "objective is the proxy (--objective proxy).")  # fmt: skip
    if gt is not None and objective == "proxy":
        raise CowdemoError("Ground truth is given: tune HOTA, IDF1 or switches, not the proxy.")
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 10_000:
        raise CowdemoError(f"Trials must be a whole number from 1 to 10,000, got {trials!r}.")
    if not 0.2 <= split <= 0.9:
        raise CowdemoError(f"The tuned share must be between 0.2 and 0.9, got {split:g}.")
    bad = [f for f in families if f not in ("norfair", "bytetrack")]
    if bad or not families:
        raise CowdemoError(f"Unknown tracker family {bad[0] if bad else ''!r}: choose norfair "
                           "or bytetrack.")  # fmt: skip
    tune_parts, held_parts = [], []
    for found, truth in zip(videos, truths):
        if len(found) < 10:
            raise CowdemoError(f"{found.meta.name} has {len(found)} processed frames: tuning "
                               "needs at least 10 (a part to tune on and a part to check).")
        cut = round(len(found) * split)
        first, rest = split_detections(found, 0, cut), split_detections(found, cut, len(found))
        tune_parts.append((first, None if truth is None else _gt_part(truth, first)))
        held_parts.append((rest, None if truth is None else _gt_part(truth, rest)))
    if gt is not None and not any(len(g) for _, g in tune_parts):
        raise CowdemoError("The ground truth has no boxes in the frames tuned on.")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip
    _enqueue_base(study, base, families)
    done: list[Trial] = []
    start = time.perf_counter()

    def run_trial(trial) -> float:
        settings = suggest_settings(trial, base, families)
        value, metrics = evaluate_settings(tune_parts, settings, objective, base)
        done.append(Trial(len(done) + 1, settings, value, metrics))
        return value

    def report(study, _trial) -> None:
        if progress is not None:
            progress(TuneProgress(len(done), trials, max(t.value for t in done),
                                  time.perf_counter() - start))  # fmt: skip

    study.optimize(run_trial, n_trials=trials, callbacks=[report])
    result = TuneResult(
        objective=objective,
        trials=done,
        defaults=base,
        best=max(done, key=lambda t: (t.value, -t.number)).settings,
        held_out={},
        tune_frames=sum(len(f) for f, _ in tune_parts),
        held_out_frames=sum(len(f) for f, _ in held_parts),
    )
    result.best = result.best.with_changes(label=base.label)
    result.held_out = {"defaults": held_out_metrics(held_parts, base),
                       "best": held_out_metrics(held_parts, result.best)}  # fmt: skip
    if base.family not in families or (base.family == "norfair"
                                       and base.distance not in SEARCH_DISTANCES):
        result.notes.append("The settings in use are outside the search space, so they were "
                            "not trial 1; they are still compared on the held-out part.")
    result.duration_s = time.perf_counter() - start
    return result
