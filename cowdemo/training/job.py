"""The process of one background job: ``python -m cowdemo.training.job <job folder>``.

Started by `cowdemo.training.jobs`; runs the fine-tune described in ``job.json`` and reports
through the folder's status.json and metrics.jsonl. No Streamlit here.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from cowdemo.errors import CowdemoError
from cowdemo.training.monitor import read_status, write_json_atomic


def _fail(folder: Path, message: str) -> None:
    from cowdemo.training.locks import release_inherited_locks

    release_inherited_locks()  # a failed job frees its device at once, not at interpreter exit
    status = read_status(folder)
    if status.get("state") != "failed":
        status.update(state="failed", error=message, message=message, ended_at=time.time(),
                      updated_at=time.time())
        write_json_atomic(folder / "status.json", status)


def main(folder_arg: str) -> int:
    import json

    folder = Path(folder_arg)
    try:
        from cowdemo.training.config import TrainConfig
        from cowdemo.training.engine import train

        spec = json.loads((folder / "job.json").read_text())
        config = TrainConfig.from_dict(spec["config"])
        print(f"job {folder.name}: {config.base} → {spec['out']} on {spec['dataset']}",
              flush=True)
        result = train(config, spec["dataset"], out=spec["out"], monitor_dir=folder,
                       val_dataset=spec.get("val_dataset"), images=spec.get("images"),
                       fresh=bool(spec.get("fresh")), compare=bool(spec.get("compare", True)),
                       progress=None)
    except CowdemoError as exc:
        print(f"error: {exc}", flush=True)
        _fail(folder, str(exc))
        return 2
    except KeyboardInterrupt:
        _fail(folder, "interrupted before the first checkpoint could be saved")
        return 130
    except BaseException as exc:
        traceback.print_exc()
        _fail(folder, f"{type(exc).__name__}: {exc}")
        return 1
    state = "stopped" if result.stopped else "completed"
    print(f"{state} at iteration {result.iteration}: {result.checkpoint}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
