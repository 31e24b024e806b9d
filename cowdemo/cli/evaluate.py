"""`cowdemo evaluate`: COCO mAP of one or more models (or results files) on a dataset."""

from __future__ import annotations

import argparse

from cowdemo.cli.checks import positive_int
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import STAT_NAMES


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cowdemo.datasets import open_dataset
    from cowdemo.evaluation.runner import evaluate_model, evaluate_results_file
    from cowdemo.runs import RunStore

    if not args.model and not args.results:
        raise CowdemoError("give at least one --model or --results")
    dataset = open_dataset(args.dataset)
    store = RunStore(args.db) if args.db else RunStore()
    evaluations = []
    for model in args.model or []:
        with tqdm(total=len(dataset.image_ids), desc=f"evaluate {model}", unit="img") as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.update(done - bar.n)

            evaluations.append(
                evaluate_model(model, dataset, device=args.device, store=store,
                               use_cache=not args.no_cache, batch_size=args.batch_size,
                               progress=progress)
            )
    for path in args.results or []:
        evaluations.append(evaluate_results_file(path, dataset, store=store))
    names = [e.model for e in evaluations]
    width = max(12, *(len(n) for n in names))
    print(f"dataset {dataset.name}: {len(dataset.image_ids)} images, {dataset.num_boxes()} boxes")
    print(f"{'':<8}" + "".join(f"{n:>{width + 2}}" for n in names))
    for stat in STAT_NAMES:
        values = "".join(f"{e.result.stats[stat]:>{width + 2}.4f}" for e in evaluations)
        print(f"{stat:<8}{values}")
    for e in evaluations:
        if e.result.unscored:
            text = ", ".join(f"{k} {v}" for k, v in sorted(e.result.unscored.items()))
            print(f"{e.model} boxes of classes the dataset lacks: {text}")
        if e.result.confusions:
            text = ", ".join(f"{k} {v}" for k, v in sorted(e.result.confusions.items()))
            print(f"{e.model} confusions (on a true box, IoU >= 0.5): {text}")
    for e in evaluations:
        state = "stored result (unchanged inputs)" if e.cached else f"{e.duration_s:.1f} s"
        print(f"{e.model}: run {e.run_id}, {state}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="COCO mAP of models on a dataset, stored as runs")
    parser.add_argument("--model", action="append", help="model name or path (repeatable)")
    parser.add_argument("--results", action="append", help="COCO results JSON of any model")
    parser.add_argument("--dataset", required=True, help="dataset name or folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="re-run even if stored")
    parser.add_argument("--db", help="run database URL (default sqlite:///data/runs.sqlite)")
    parser.set_defaults(func=cmd_evaluate)
