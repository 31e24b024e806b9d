"""`cowdemo evaluate`: COCO mAP of one or more models (or results files) on a dataset."""

from __future__ import annotations

import argparse

from cowdemo.cli.checks import positive_int
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import STAT_NAMES


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cowdemo.datasets import open_dataset
    from cowdemo.evaluation.report import shown
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
        values = "".join(f"{shown(e.result.stats[stat]):>{width + 2}}" for e in evaluations)
        print(f"{stat:<8}{values}")
    for e in evaluations:
        if e.result.unscored:
            text = ", ".join(f"{k} {v}" for k, v in sorted(e.result.unscored.items()))
            print(f"{e.model} boxes of classes the dataset lacks: {text}")
        if e.result.confusions:
            text = ", ".join(f"{k} {v}" for k, v in sorted(e.result.confusions.items()))
            print(f"{e.model} confusions (on a true box, IoU >= 0.5): {text}")
    _print_insights(evaluations, dataset, store, args)
    for e in evaluations:
        state = "stored result (unchanged inputs)" if e.cached else f"{e.duration_s:.1f} s"
        print(f"{e.model}: run {e.run_id}, {state}")
    return 0


def _print_insights(evaluations: list, dataset, store, args: argparse.Namespace) -> None:
    """Error types and calibration per model; with two or more, each against the first."""
    from cowdemo.evaluation.analysis import ERROR_LABELS, ERROR_TYPES
    from cowdemo.evaluation.insights import compare_evaluations, error_types, score_calibration

    names = [e.model for e in evaluations]
    width = max(14, *(len(n) for n in names))
    tides = [error_types(e, dataset) for e in evaluations]
    print("error types (TIDE, IoU 0.5): AP50 gained if fixed (count)")
    print(f"  {'':<28}" + "".join(f"{n:>{width + 2}}" for n in names))
    for kind in ERROR_TYPES:
        cells = "".join(f"{f'{t.delta_ap[kind]:.4f} ({t.counts[kind]})':>{width + 2}}"
                        for t in tides)  # fmt: skip
        print(f"  {ERROR_LABELS[kind]:<28}{cells}")
    cells = "".join(f"{score_calibration(e, dataset).ece:>{width + 2}.4f}" for e in evaluations)
    print(f"  {'calibration error (ECE)':<28}{cells}")
    if len(evaluations) < 2 or args.bootstrap <= 0:
        return
    base = evaluations[0]
    for other in evaluations[1:]:
        comparison = compare_evaluations(base, other, dataset, n_boot=args.bootstrap,
                                         seed=args.seed, store=store)
        print(f"{other.model} vs {base.model} ({comparison.n_images} images, paired bootstrap, "
              f"{comparison.n_boot} rounds, seed {comparison.seed}):")
        for line in comparison.sentences():
            print(f"  {line}")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="COCO mAP of models on a dataset, stored as runs")
    parser.add_argument("--model", action="append", help="model name or path (repeatable)")
    parser.add_argument("--results", action="append", help="COCO results JSON of any model")
    parser.add_argument("--dataset", required=True, help="dataset name or folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="re-run even if stored")
    parser.add_argument("--db", help="run database URL (default sqlite:///data/runs.sqlite)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="rounds of the paired bootstrap that compares each model with the "
                        "first (0: no comparison)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.set_defaults(func=cmd_evaluate)
