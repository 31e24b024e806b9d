"""cowdemo: predict, annotate, evaluate, fine-tune and track cows with Faster R-CNN."""

from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError

__version__ = "0.1.0"
__all__ = ["CowdemoError", "Detections", "DetectorBox", "__version__"]


def __getattr__(name: str):
    # DetectorBox pulls in torch; import it on first use so `import cowdemo` stays light.
    if name == "DetectorBox":
        from cowdemo.box import DetectorBox

        return DetectorBox
    raise AttributeError(name)
