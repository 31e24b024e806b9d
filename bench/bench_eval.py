"""COCO box mAP: cowdemo against hotcoco, faster-coco-eval and pycocotools, one workload, one run.

The workload is the 100-image val2014 reference in ../shared replicated 50 times (5,000 images,
~42,000 annotations, ~36,700 detections), each copy with new image and annotation ids, written to
two JSON files. Every engine is timed two ways, best of ``--repeats``:

Rounds are interleaved (each engine once per round, the best round kept), so load that drifts on
a shared machine hits every engine alike.

* from files: the two JSON paths to the twelve stats (parsing included);
* from loaded objects: the parsed ground-truth dict and results list to the twelve stats (each
  engine builds its own index from them, as a caller holding dicts must).

cowdemo is timed as ``coco_stats`` (the twelve stats; hotcoco underneath) and as
``evaluate_coco`` (its own numpy engine: everything the Evaluate page shows, per class, PR
curves, per image, score sweep). cowdemo's stats must equal pycocotools' exactly, else the
script fails; another engine's differences are printed as notes. Prints markdown table rows
for BENCHMARKS.md, ratios against hotcoco.

    .venv/bin/python bench/bench_eval.py [--copies 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from machine import describe  # noqa: E402
from table import HEADER, row  # noqa: E402

SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference/coco-map/val2014-100"


def replicate(gt: dict, results: list, copies: int) -> tuple[dict, list]:
    """``copies`` copies of every image, with new image and annotation ids."""
    image_ids = [im["id"] for im in gt["images"]]
    stride = max(image_ids) + 1
    ann_stride = max(a["id"] for a in gt["annotations"]) + 1
    images, annotations, dets = [], [], []
    for c in range(copies):
        for im in gt["images"]:
            images.append({**im, "id": im["id"] + c * stride})
        for a in gt["annotations"]:
            annotations.append(
                {**a, "id": a["id"] + c * ann_stride, "image_id": a["image_id"] + c * stride}
            )
        for r in results:
            dets.append({**r, "bbox": list(r["bbox"]), "image_id": r["image_id"] + c * stride})
    big = {k: v for k, v in gt.items() if k not in ("images", "annotations")}
    big["images"], big["annotations"] = images, annotations
    return big, dets


# --- one function per engine: (ground truth, results) -> the 12 stats ---------------------------
def pycocotools_stats(gt, res) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(gt, dict):
            coco_gt = COCO()
            coco_gt.dataset = gt
            coco_gt.createIndex()
        else:
            coco_gt = COCO(gt)
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(res), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def faster_coco_eval_stats(gt, res) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt)
        evaluator = COCOeval_faster(coco_gt, coco_gt.loadRes(res), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def hotcoco_stats(gt, res) -> np.ndarray:
    import hotcoco

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = hotcoco.COCO(gt)
        evaluator = hotcoco.COCOeval(coco_gt, coco_gt.load_res(res), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def cowdemo_stats(gt, res) -> np.ndarray:
    from cowdemo.evaluation.fast import coco_stats

    return np.array(list(coco_stats(gt, res).values()))


def cowdemo_full(gt, res) -> np.ndarray:
    from cowdemo.evaluation.detection import evaluate_coco

    return evaluate_coco(gt, res).stats_array


def best_time(fn: Callable, args: Callable[[], tuple], repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``fn(*args())`` over ``repeats`` (``args`` builds fresh inputs outside
    the timing: engines may keep or change what they are given)."""
    best, stats = float("inf"), None
    for _ in range(repeats):
        inputs = args()
        start = time.perf_counter()
        stats = fn(*inputs)
        best = min(best, time.perf_counter() - start)
    return best, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=50, help="replicas of the 100 images")
    parser.add_argument("--repeats", type=int, default=3, help="best of N (fast engines)")
    parser.add_argument("--coco-repeats", type=int, default=1, help="best of N for pycocotools")
    args = parser.parse_args(argv)
    if not REFERENCE.exists():
        print(f"skipped: {REFERENCE} is absent (the project's ../shared reference data)")
        return 0
    gt = json.loads((REFERENCE / "instances_val2014_100.json").read_text())
    results = json.loads((REFERENCE / "fakebbox100_results.json").read_text())
    gt, results = replicate(gt, results, args.copies)
    gt_text, res_text = json.dumps(gt), json.dumps(results)
    folder = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(gt_text)
    res_path.write_text(res_text)

    def files() -> tuple:
        return str(gt_path), str(res_path)

    def objects() -> tuple:
        return json.loads(gt_text), json.loads(res_text)

    engines = {
        "pycocotools": (pycocotools_stats, args.coco_repeats),
        "faster-coco-eval": (faster_coco_eval_stats, args.repeats),
        "hotcoco": (hotcoco_stats, args.repeats),
        "cowdemo coco_stats": (cowdemo_stats, args.repeats),
        "cowdemo evaluate_coco (full result)": (cowdemo_full, args.repeats),
    }
    times: dict[tuple[str, str], float] = {}
    notes: list[str] = []
    reference = pycocotools_stats(*files())
    # Interleaved (every engine once per round, best round kept): load that drifts on a shared
    # machine hits every engine alike instead of whichever ran last.
    for way, make in (("files", files), ("objects", objects)):
        for round_ in range(max(repeats for _, repeats in engines.values())):
            for name, (fn, repeats) in engines.items():
                if round_ >= repeats:
                    continue
                seconds, stats = best_time(fn, make, 1)
                if not np.array_equal(stats, reference):
                    diff = np.abs(stats - reference).max()
                    if name.startswith("cowdemo"):
                        print(f"FAILED: {name} ({way}) stats differ from pycocotools by up to "
                              f"{diff:.3e}")
                        return 1
                    note = f"{name} ({way}): stats differ from pycocotools by up to {diff:.1e}"
                    if note not in notes:
                        notes.append(note)
                times[(way, name)] = min(times.get((way, name), float("inf")), seconds)
    workload = f"{len(gt['images'])} images / {len(gt['annotations'])} gt / {len(results)} dets"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {describe()}; load average (1 min) at the end: {load:.2f}")
    print(f"workload: {workload}; cowdemo's 12 stats identical to pycocotools")
    for note in notes:
        print(f"note: {note}")
    print(HEADER)
    for way, label in (("files", "from the two JSON files"), ("objects", "from loaded objects")):
        base = times[(way, "hotcoco")]
        for name in ("cowdemo coco_stats", "cowdemo evaluate_coco (full result)"):
            print(row(f"{name}, {label}", times[(way, name)], base, "hotcoco"))
    print()
    print("| engine | from files s | vs hotcoco | from objects s | vs hotcoco |")
    print("| --- | --- | --- | --- | --- |")
    for name in engines:
        cells = []
        for way in ("files", "objects"):
            seconds, base = times[(way, name)], times[(way, "hotcoco")]
            cells += [f"{seconds:.4g}", f"{seconds / base:.2f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
