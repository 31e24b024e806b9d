"""What every detector backend is: RGB images in, `Detections` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from cowdemo.detections import Detections


class Detector(ABC):
    """A loaded, ready-to-run detector.

    Subclasses set ``name``, ``classes`` (the names behind ``Detections.class_ids``) and
    ``device`` ("cpu" or "cuda:0"), and implement :meth:`predict_batch`. Images are RGB uint8
    arrays of shape (h, w, 3), as :func:`cowdemo.images.load` returns them.
    """

    name: str = "detector"
    classes: tuple[str, ...] = ()
    device: str = "cpu"
    #: Boxes scoring below this are dropped inside the model (its own floor, not the UI slider).
    min_score: float = 0.05

    @abstractmethod
    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in each image; one `Detections` per image, boxes in its pixels."""

    def predict(self, image: np.ndarray) -> Detections:
        """Detect objects in one RGB image."""
        return self.predict_batch([image])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device!r})"
