"""Label-error review on a dataset (no Streamlit here): the models' boxes as COCO results in the
dataset's categories, :func:`cowdemo.evaluation.suspects.find_suspects` on the images marked
done, and the one-click fixes: add the model's box a person forgot, delete a stray box::

    results = {m: model_results(dataset, {i: detector.predict(...)}, ("cow",), None) for m in ...}
    for suspect in review_list(dataset, results):
        print(suspect_text(suspect))
    fix(store, "herd", suspect)          # "missing": adds its box; "stray": deletes it
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cowdemo.datasets import formats
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.suspects import Suspect, find_suspects

#: A stored box within this many pixels of a stray suspect's box is that box.
SAME_BOX_PX = 1e-3


def model_results(dataset: Any, detections: Mapping[int, Detections],
                  classes: Sequence[str] | None, label_as: str | None) -> list[dict[str, Any]]:
    """COCO results of one model in the dataset's category ids: its boxes in the class filter
    (None: all), named ``label_as`` when given (a COCO model's *dog* stored as *cow*); boxes of
    classes the dataset lacks are left out."""
    rows: list[dict[str, Any]] = []
    for image_id, dets in detections.items():
        kept = dets.filter(0.0, classes)
        if label_as is not None:
            kept = Detections(kept.xyxy, kept.scores, kept.class_ids,
                              [label_as] * len(kept))
        rows += kept.to_coco_results(image_id, dataset.category_ids)
    return rows


def review_list(dataset: Any, results: Mapping[str, list[dict[str, Any]]],
                min_score: float = 0.7) -> list[Suspect]:
    """The suspects on the images marked done (the only ones that are ground truth)."""
    done = [int(im["id"]) for im in dataset.images if formats.is_done(im)]
    return find_suspects(dataset.subset(done).coco, results, min_score=min_score)


def suspect_text(suspect: Suspect) -> str:
    """One line: what looks wrong and where."""
    x, y, w, h = suspect.box
    where = f"at x {x:.0f}, y {y:.0f} ({w:.0f}×{h:.0f} px) on {suspect.file_name}"
    if suspect.kind == "missing":
        return (f"Missing {suspect.category}? {' and '.join(suspect.models)} found one "
                f"(score {suspect.score:.2f}) {where}, with no box drawn there")
    return f"Stray {suspect.category} box? No model finds anything {where}"


def xyxy(suspect: Suspect) -> list[float]:
    x, y, w, h = suspect.box
    return [x, y, x + w, y + h]


def fix(store: Any, name: str, suspect: Suspect) -> str:
    """Apply the suspect's fix: add the model's box ("missing") or delete the stray box."""
    boxes = store.boxes(name, suspect.image_id)
    if suspect.kind == "missing":
        store.set_boxes(name, suspect.image_id, [*boxes, (suspect.category, xyxy(suspect))])
        return f"Added the {suspect.category} box on {suspect.file_name}."
    target = xyxy(suspect)
    keep = [b for b in boxes if not (b[0] == suspect.category and all(
        abs(u - v) <= SAME_BOX_PX for u, v in zip(b[1], target)))]
    if len(keep) == len(boxes):
        raise CowdemoError(f"That {suspect.category} box on {suspect.file_name} is not there any "
                           "more (changed meanwhile): nothing deleted.")
    store.set_boxes(name, suspect.image_id, keep)
    return f"Deleted the stray {suspect.category} box on {suspect.file_name}."
