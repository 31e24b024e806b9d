"""One-shot GPU check: every GPU path of cowdemo run once, with one summary file.

On a machine with CUDA it runs, each step timed and recorded as pass / fail / skip with its figures:

- batched prediction with each backend: torchvision Faster R-CNN (MobileNet and R50-FPN), YOLOX
  ONNX (onnxruntime's CUDA provider when installed, else said so) and YOLOX PyTorch (when that
  backend is installed);
- a few mixed-precision (AMP) training steps of Faster R-CNN and of YOLOX through `cowdemo train`;
- a one-process DDP run through torchrun (NCCL on CUDA, gloo on CPU) with `cowdemo train --ddp`;
- a short tracking run (`cowdemo track`) on a synthetic clip with ground truth;
- the benchmarks' `--device cuda` variants (bench_train, bench_predict), shortened.

Model weights are seeded random ones written into a temporary checkpoints folder (the machine
may have no network): this checks that the GPU paths run and how fast, not accuracy.

    bash scripts/gpu-check.sh                    # on the GPU machine; summary in gpu-check.json
    bash scripts/gpu-check.sh --dry-run          # CPU fallback, tiny sizes (run by the tests)

Exit code 0 when no step failed (skips are fine), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))
YOLOX_ONNX_CANDIDATES = [SHARED / "models/yolox-nano/yolox_nano.onnx",
                         REPO / "checkpoints/yolox_nano.onnx"]


class Skip(Exception):
    """A step that cannot run here (said why in the summary, not a failure)."""


class Check:
    def __init__(self, device: str, dry_run: bool, work: Path):
        self.device, self.dry_run, self.work = device, dry_run, work
        self.checkpoints = work / "checkpoints"
        self.data = work / "data"
        self.env = {"COWDEMO_CHECKPOINTS": str(self.checkpoints), "COWDEMO_DATA": str(self.data),
                    "COWDEMO_OFFLINE": "1", "TORCH_HOME": str(work / "torch"),
                    "COWDEMO_RUNS_DB": f"sqlite:///{work / 'runs.sqlite'}"}
        os.environ.update(self.env)
        self.steps: list[dict] = []

    # helpers -----------------------------------------------------------------------------------
    def step(self, name: str, fn: Callable[[], dict]) -> None:
        print(f"gpu-check: {name} ...", flush=True)
        start = time.perf_counter()
        record: dict = {"step": name}
        try:
            record.update(status="pass", figures=fn() or {})
        except Skip as why:
            record.update(status="skip", reason=str(why))
        except Exception as exc:  # every failure goes into the summary
            record.update(status="fail", reason=f"{type(exc).__name__}: {exc}"[:2000],
                          traceback=traceback.format_exc()[-4000:])
        record["seconds"] = round(time.perf_counter() - start, 2)
        self.steps.append(record)
        print(f"gpu-check: {name}: {record['status']} in {record['seconds']} s "
              f"{record.get('figures') or record.get('reason', '')}", flush=True)

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        run = subprocess.run([sys.executable, "-m", "cowdemo.cli", *args], capture_output=True,
                             text=True, env={**os.environ, **self.env}, timeout=timeout, cwd=REPO)
        if run.returncode != 0:
            raise RuntimeError(f"cowdemo {args[0]} exited {run.returncode}: "
                               f"{(run.stderr or run.stdout).strip()[-1500:]}")
        return run

    def bench(self, script: str, *args: str, timeout: float = 600) -> dict:
        run = subprocess.run([sys.executable, str(REPO / "bench" / script), *args],
                             capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if run.returncode != 0:
            raise RuntimeError(f"{script} exited {run.returncode}: {run.stderr.strip()[-1500:]}")
        rows = [ln for ln in run.stdout.splitlines() if ln.startswith("| ")][2:]
        return {"rows": rows}

    def write_base(self, arch: str, filename: str, num_classes: int = 91) -> None:
        import torch

        from cowdemo.models.torchvision_frcnn import get_architecture

        path = self.checkpoints / filename
        if path.exists():
            return
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        torch.save(get_architecture(arch).build(num_classes).state_dict(), path)

    def images(self, n: int) -> list:
        from cowdemo.datasets.synthetic import make_scene

        size = (160, 120) if self.dry_run else (640, 480)
        return [make_scene(seed=i, width=size[0], height=size[1]).image for i in range(n)]

    def dataset(self) -> Path:
        from cowdemo.datasets.synthetic import make_dataset

        folder = self.work / "cows"
        if not folder.exists():
            size = (128, 96) if self.dry_run else (640, 480)
            make_dataset(folder, n_images=8 if self.dry_run else 32, seed=1, width=size[0],
                         height=size[1])
        return folder

    def yolox_onnx(self) -> Path:
        for path in YOLOX_ONNX_CANDIDATES:
            if path.is_file():
                return path
        raise Skip("no YOLOX ONNX export found (looked for "
                   + ", ".join(str(p) for p in YOLOX_ONNX_CANDIDATES) + ")")

    def predict_figures(self, box, n: int, batch: int) -> dict:
        import torch

        images = self.images(n)
        box.predict_many(images[:batch], batch_size=batch)  # warm-up
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        found = box.predict_many(images, batch_size=batch)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        took = time.perf_counter() - start
        return {"images": n, "batch": batch, "images_per_s": round(n / took, 2),
                "boxes": int(sum(len(d) for d in found)),
                "device_used": str(getattr(box.detector, "device", self.device))}

    # steps -------------------------------------------------------------------------------------
    def environment(self) -> dict:
        import onnxruntime as ort
        import torch

        figures = {"python": platform.python_version(), "torch": torch.__version__,
                   "cuda_available": torch.cuda.is_available(), "device": self.device,
                   "onnxruntime_providers": ort.get_available_providers()}
        if torch.cuda.is_available():
            figures.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
                           cuda=torch.version.cuda, nccl=torch.cuda.nccl.is_available(
                               [torch.zeros(1, device="cuda")]))
        return figures

    def predict_torchvision(self) -> dict:
        from cowdemo.box import DetectorBox

        figures = {}
        archs = [("frcnn-mobilenet-v3", "frcnn-mobilenet-v3-coco",
                  "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth")]
        if not self.dry_run:
            archs.append(("frcnn-r50-fpn", "frcnn-r50-fpn-coco",
                          "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"))
        for arch, name, filename in archs:
            self.write_base(arch, filename)
            box = DetectorBox(name, device=self.device, score_threshold=0.0)
            figures[name] = self.predict_figures(box, 4 if self.dry_run else 32,
                                                 2 if self.dry_run else 8)
        return figures

    def predict_yolox_onnx(self) -> dict:
        from cowdemo.box import DetectorBox

        box = DetectorBox(str(self.yolox_onnx()), device=self.device, score_threshold=0.0)
        figures = self.predict_figures(box, 4 if self.dry_run else 64, 2 if self.dry_run else 16)
        if self.device.startswith("cuda") and not figures["device_used"].startswith("cuda"):
            figures["note"] = ("onnxruntime has no CUDA provider here (the CPU onnxruntime "
                               "wheel is installed): ran on the CPU provider")
        return figures

    def predict_yolox_pytorch(self) -> dict:
        """The PyTorch YOLOX backend: a ready registry entry (official .pth), else the ONNX
        export turned into a PyTorch module (the Fine-tune path)."""
        from cowdemo.box import DetectorBox
        from cowdemo.coco import COCO_CLASSES
        from cowdemo.models.registry import list_models
        from cowdemo.models.yolox_torch import (
            YoloxTorchDetector,
            module_from_onnx,
            yolox_available,
        )

        ok, why = yolox_available()
        if not ok:
            raise Skip(why)
        ready = [m.name for m in list_models() if m.kind == "yolox-coco" and m.status == "ready"]
        if ready:
            box, source = DetectorBox(ready[0], device=self.device, score_threshold=0.0), ready[0]
        else:
            onnx = self.yolox_onnx()
            module, info = module_from_onnx(onnx)
            detector = YoloxTorchDetector("yolox-from-onnx", module, COCO_CLASSES,
                                          info.input_size, device=self.device,
                                          mixed_precision=self.device.startswith("cuda"))
            box, source = DetectorBox(detector, score_threshold=0.0), f"{onnx.name} in PyTorch"
        figures = self.predict_figures(box, 4 if self.dry_run else 64, 2 if self.dry_run else 16)
        return {"model": source, **figures}

    def train(self, base: str, out: str, *extra: str) -> dict:
        iterations = "3" if self.dry_run else "20"
        size = ["--image-size", "96", "--max-size", "128"] if self.dry_run else []
        run = self.cli("train", "--base", base, "--dataset", str(self.dataset()), "--iterations",
                 iterations, "--batch-size", "2", "--eval-every", "0", "--no-eval-at-start",
                 "--no-compare", "--device", self.device, "--out", out, "--fresh",
                 "--checkpoint-every", "1000", *size, *extra, timeout=900)
        from cowdemo.models.checkpoints import read_checkpoint_info
        from cowdemo.training.monitor import read_metrics

        info = read_checkpoint_info(self.checkpoints / f"{out}.pt")
        rows = [r for r in read_metrics(self.checkpoints / f"{out}.training")
                if r["type"] == "train"]
        per_iter = sorted(r["sec_per_iter"] for r in rows if "sec_per_iter" in r)
        settings = info.metadata.get("settings") or {}
        return {"iterations": info.metadata.get("iteration"),
                "amp": bool(settings.get("amp")) and self.device.startswith("cuda"),
                "world_size": info.metadata.get("world_size"),
                "median_s_per_iter": per_iter[len(per_iter) // 2] if per_iter else None,
                "last_loss": rows[-1].get("loss") if rows else None,
                "torchrun": "torch.distributed.run" in run.stderr}

    def train_frcnn(self) -> dict:
        self.write_base("frcnn-mobilenet-v3", "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth")
        return self.train("frcnn-mobilenet-v3-coco", "gpu-check-frcnn")

    def train_yolox(self) -> dict:
        from cowdemo.models.registry import list_models

        if not any(m.name == "yolox-nano-coco" for m in list_models()):
            raise Skip("the YOLOX PyTorch training path is not installed in this build")
        onnx = self.yolox_onnx()
        target = self.checkpoints / onnx.name
        if not target.exists():
            target.write_bytes(onnx.read_bytes())
        return self.train(onnx.stem, "gpu-check-yolox")

    def ddp(self) -> dict:
        self.write_base("frcnn-mobilenet-v3", "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth")
        figures = self.train("frcnn-mobilenet-v3-coco", "gpu-check-ddp", "--ddp")
        if not figures["torchrun"] or figures["world_size"] != 1:
            raise RuntimeError(f"expected a 1-process group through torchrun, got world size "
                               f"{figures['world_size']} (torchrun: {figures['torchrun']})")
        figures["backend"] = "nccl" if self.device.startswith("cuda") else "gloo"
        return figures

    def track(self) -> dict:
        from cowdemo.datasets.synthetic import make_video_frames, write_mot_gt, write_video

        frames = 20 if self.dry_run else 150
        video = make_video_frames(seed=0, n_frames=frames)
        clip = write_video(self.work / "clip.mp4", video)
        gt = write_mot_gt(self.work / "gt.txt", video)
        model = str(self.yolox_onnx())
        start = time.perf_counter()
        run = self.cli("track", str(clip), "--model", model, "--gt", str(gt), "--classes", "all",
                       "--device", self.device, "--out", str(self.work / "tracks"))
        took = time.perf_counter() - start
        return {"frames": frames, "frames_per_s": round(frames / took, 1),
                "output": run.stdout.strip().splitlines()[-3:]}

    def benchmarks(self) -> dict:
        if self.dry_run:  # the cheapest benchmark, to keep its --device path working
            return self.bench("bench_predict.py", "--device", self.device, "--repeats", "1")
        return {"bench_train": self.bench("bench_train.py", "--device", self.device,
                                          "--iterations", "8", "--rounds", "1"),
                "bench_predict": self.bench("bench_predict.py", "--device", self.device,
                                            "--repeats", "3")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU fallback with tiny sizes (checks that the script works)")
    parser.add_argument("--out", default=str(REPO / "gpu-check.json"), help="summary file")
    parser.add_argument("--device", help="default: cuda when available (cpu with --dry-run)")
    args = parser.parse_args(argv)
    import torch

    device = args.device or ("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: CUDA is not available on this machine; use --dry-run for the CPU "
              "fallback", file=sys.stderr)
        return 2
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        check = Check(device, args.dry_run, Path(tmp))
        check.step("environment", check.environment)
        check.step("predict: torchvision Faster R-CNN, batched", check.predict_torchvision)
        check.step("predict: YOLOX ONNX, batched", check.predict_yolox_onnx)
        check.step("predict: YOLOX PyTorch, batched", check.predict_yolox_pytorch)
        check.step("train: Faster R-CNN, AMP", check.train_frcnn)
        check.step("train: YOLOX, AMP", check.train_yolox)
        check.step("DDP: one process through torchrun", check.ddp)
        check.step("track: synthetic clip with ground truth", check.track)
        check.step("benchmarks: --device variants", check.benchmarks)
    summary = {"device": device, "dry_run": args.dry_run, "seconds": round(time.time() - started),
               "date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "passed": sum(s["status"] == "pass" for s in check.steps),
               "failed": sum(s["status"] == "fail" for s in check.steps),
               "skipped": sum(s["status"] == "skip" for s in check.steps), "steps": check.steps}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"gpu-check: {summary['passed']} passed, {summary['failed']} failed, "
          f"{summary['skipped']} skipped in {summary['seconds']} s on {device}; summary in {out}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
