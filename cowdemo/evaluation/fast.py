"""The twelve COCO stats at the fastest engine's speed: hotcoco (Rust, bit-identical to
pycocotools) does the work; cowdemo's own numpy engine (``evaluate_coco``) is the fallback and
gives everything else the Evaluate page shows (per class, PR curves, per image, score sweep).

    stats = coco_stats("instances_val.json", "results.json")   # paths: hotcoco parses them
    stats = coco_stats(gt_dict, results_list)                    # loaded objects
    stats["AP"], stats["AP50"]
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import MAX_DETS, _summarize, evaluate_coco, load_coco_json


def _hotcoco():
    try:
        import hotcoco
    except ImportError:  # the fallback keeps cowdemo working without it
        return None
    return hotcoco


def _as_source(value: Any, what: str) -> Any:
    """A path (str / Path of an existing file) stays a path for hotcoco's own parser; anything
    else is parsed as cowdemo does (dicts, lists, JSON text, bytes)."""
    if isinstance(value, Path) or (isinstance(value, str) and value.lstrip()[:1] not in "{[" and
                                   Path(value).is_file()):  # fmt: skip
        return str(value)
    return load_coco_json(value, what)


def coco_stats(ground_truth: Any, results: Any, *, engine: str = "auto") -> dict[str, float]:
    """The 12 COCO box stats (``STAT_NAMES`` order, -1 where undefined), identical to
    pycocotools' ``COCOeval.stats``. ``engine``: "auto" (hotcoco when installed), "hotcoco"
    or "cowdemo"."""
    hotcoco = _hotcoco() if engine in ("auto", "hotcoco") else None
    if engine == "hotcoco" and hotcoco is None:
        raise CowdemoError("hotcoco is not installed: pip install hotcoco==1.3.0, or use "
                           "engine='cowdemo'.")
    if hotcoco is None:
        return evaluate_coco(ground_truth, results, score_thresholds=[0.0]).stats
    gt = _as_source(ground_truth, "COCO ground truth")
    res = _as_source(results, "COCO results")
    if isinstance(res, list) and not res:
        # hotcoco refuses an empty results list; the numpy engine scores it (all zeros)
        return evaluate_coco(gt if isinstance(gt, Mapping) else load_coco_json(gt), res,
                             score_thresholds=[0.0]).stats  # fmt: skip
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = hotcoco.COCO(gt)
            evaluator = hotcoco.COCOeval(coco_gt, coco_gt.load_res(res), "bbox")
            evaluator.evaluate()
            evaluator.accumulate()
            curves = evaluator.eval
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise CowdemoError(f"The COCO files could not be scored ({message}): check that they "
                           "are a COCO ground truth and a COCO results list.") from None
    # hotcoco's own summarize can differ from pycocotools' in the last bit (its means add in
    # another order); pycocotools' summarize over hotcoco's curves is exact.
    precision = np.asarray(curves["precision"])[..., MAX_DETS.index(100)]  # (T, R, K, A)
    return _summarize(precision, np.asarray(curves["recall"]))
