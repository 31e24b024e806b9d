"""Fine-tuning: from a COCO model (or an earlier fine-tune) to a detector of your classes.

- :mod:`~cowdemo.training.config`: `TrainConfig`, every setting with its default;
- :mod:`~cowdemo.training.sources`: store datasets, folders, COCO downloads, Deep Lake, synthetic;
- :mod:`~cowdemo.training.data`: checks, clipping, the held-out split, resumable batch order;
- :mod:`~cowdemo.training.surgery`: new box head, frozen BatchNorm and backbone stages;
- :mod:`~cowdemo.training.engine`: the loop, evaluation, checkpoints, resume (`train`);
- :mod:`~cowdemo.training.distributed`: DDP through torchrun;
- :mod:`~cowdemo.training.jobs`: background jobs the Fine-tune page starts and re-attaches to.

    from cowdemo.training import TrainConfig, train
    result = train(TrainConfig(base="frcnn-r50-fpn-coco", classes=("cow",), iterations=1000),
                   "cows", out="checkpoints/cows-r50")
"""

from cowdemo.training.config import TrainConfig
from cowdemo.training.engine import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
