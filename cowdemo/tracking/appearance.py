"""Coat colours as a tiny appearance signature, for re-identifying a cow after it was lost.

Each box gets the colour histogram of its inner part (the middle 60%, so grass around the cow
counts little) over 4 x 4 x 4 RGB bins, stored as the square root of the normalised histogram:
the Hellinger distance of two signatures is then ``sqrt(1 - a · b)``, 0 for identical colours
and 1 for nothing in common. Signatures are computed once in the detection pass and cached with
the boxes, so switching re-identification on never re-runs the detector.
"""

from __future__ import annotations

import numpy as np

BINS_PER_CHANNEL = 4
EMBEDDING_SIZE = BINS_PER_CHANNEL**3
#: Share of the box kept on each side of its centre (0.3 keeps the middle 60%).
INNER = 0.3
#: Boxes larger than this many pixels are sampled on a grid (signatures need no more).
MAX_SAMPLES = 4096


def colour_index(image: np.ndarray) -> np.ndarray:
    """(h, w) uint8 bin index of every pixel of an RGB uint8 image."""
    q = image >> 6  # 256 / 4 = 64 values per bin
    return (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).astype(np.uint8)


def coat_signatures(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """(n, 64) float32 signatures of the boxes ``xyxy`` (pixels of ``image``)."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(boxes), EMBEDDING_SIZE), np.float32)
    if not len(boxes):
        return out
    h, w = image.shape[:2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * INNER
    lo = np.floor(centre - half).astype(np.int64)
    hi = np.ceil(centre + half).astype(np.int64)
    lo = np.clip(lo, 0, [w - 1, h - 1])
    hi = np.clip(np.maximum(hi, lo + 1), 1, [w, h])
    for i, ((x1, y1), (x2, y2)) in enumerate(zip(lo, hi)):
        area = (x2 - x1) * (y2 - y1)
        step = max(1, int(np.sqrt(area / MAX_SAMPLES)))
        patch = colour_index(image[y1:y2:step, x1:x2:step])  # the box's pixels only
        counts = np.bincount(patch.ravel(), minlength=EMBEDDING_SIZE).astype(np.float32)
        out[i] = np.sqrt(counts / max(counts.sum(), 1.0))
    return out


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two signatures, in [0, 1]."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.dot(a, b)))))
