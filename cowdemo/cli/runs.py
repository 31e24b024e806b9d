"""`cowdemo runs list|show|diff|export` and `cowdemo check`: the run history and the CI gate."""

from __future__ import annotations

import argparse
import csv
import json
import sys

EXIT_REGRESSION = 1


def _store(args: argparse.Namespace):
    from cowdemo.runs import RunStore

    return RunStore(args.db) if args.db else RunStore()


def cmd_runs_list(args: argparse.Namespace) -> int:
    runs = _store(args).list(kind=args.kind, model=args.model, dataset=args.dataset)
    metric = args.metric
    print(f"{'id':>5}  {'when':<19}  {'kind':<10}  {'model':<28}  {'dataset':<20}  {metric}")
    for r in runs:
        value = r.metrics.get(metric)
        shown = "-" if value is None else "n/a" if value == -1 else f"{value:.4f}"
        print(f"{r.id:>5}  {r.when:<19}  {r.kind:<10}  {r.model:<28}  {r.dataset:<20}  {shown}")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.get(args.run)
    print(json.dumps({**run.__dict__, "when": run.when}, indent=1, default=str))
    return 0


def cmd_runs_diff(args: argparse.Namespace) -> int:
    from cowdemo.regression import diff_runs

    diff = diff_runs(_store(args), args.a, args.b)
    print(f"run {args.a} ({diff['a'].model}) → run {args.b} ({diff['b'].model})")
    for name, d in diff["metrics"].items():
        if d["delta"] is not None:
            print(f"  {name:<22} {d['a']:.4f} → {d['b']:.4f}  ({d['delta']:+.4f})")
    for name, d in diff["classes"].items():
        if d["delta"]:
            print(f"  class {name:<16} AP50 {d['a']:.4f} → {d['b']:.4f}  ({d['delta']:+.4f})")
    for image in diff["images_changed"]:
        print(f"  image {image['image_id']}: {image['a']} → {image['b']}")
    for track in diff["tracks_changed"]:
        print(f"  track {track['track']}: ID switches {track['a']} → {track['b']}")
    return 0


def cmd_runs_export(args: argparse.Namespace) -> int:
    runs = _store(args).list(kind=args.kind, model=args.model, dataset=args.dataset)
    metrics = sorted({m for r in runs for m in r.metrics})
    try:
        out = open(args.out, "w", newline="") if args.out else sys.stdout  # noqa: SIM115
    except OSError as exc:
        from cowdemo.errors import CowdemoError

        raise CowdemoError(f"Cannot write {args.out} ({exc.strerror or exc}).") from None
    try:
        writer = csv.writer(out)
        writer.writerow(["id", "when", "kind", "model", "dataset", "dataset_hash",
                         "weights_sha256", "code_version", "device", "duration_s", *metrics])
        for r in runs:
            writer.writerow([r.id, r.when, r.kind, r.model, r.dataset, r.dataset_hash,
                             r.weights_sha256, r.code_version, r.device, f"{r.duration_s:.3f}",
                             *(r.metrics.get(m, "") for m in metrics)])
    finally:
        if args.out:
            out.close()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from cowdemo.regression import check, latest_run

    store = _store(args)
    if args.current == "evaluate":
        from cowdemo.datasets import open_dataset
        from cowdemo.evaluation.runner import evaluate_model

        dataset = open_dataset(args.dataset)
        current = store.get(evaluate_model(args.model, dataset, device=args.device,
                                           store=store).run_id)
    else:
        from cowdemo.datasets import dataset_name
        from cowdemo.models.registry import model_name

        # the same names `cowdemo evaluate` stores runs under, for a path or a name
        current = latest_run(store, "evaluation", model_name(args.model),
                             dataset_name(args.dataset))
    on = None
    if args.significant:
        from cowdemo.datasets import open_dataset

        on = open_dataset(args.dataset)
    verdict = check(store, current, args.baseline, args.metric, args.tolerance,
                    significant_on=on, n_boot=args.bootstrap, seed=args.seed)
    print(verdict.report())
    return EXIT_REGRESSION if verdict.regressed else 0


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="the run history: list, show, diff, export")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    for name, handler, help_text in (
        ("list", cmd_runs_list, "list runs"),
        ("export", cmd_runs_export, "runs as CSV"),
    ):
        p = runs_sub.add_parser(name, help=help_text)
        p.add_argument("--kind", choices=["evaluation", "training", "tracking"])
        p.add_argument("--model")
        p.add_argument("--dataset")
        p.add_argument("--metric", default="AP50")
        p.add_argument("--out", help="CSV file (export; default stdout)")
        p.add_argument("--db")
        p.set_defaults(func=handler)
    show = runs_sub.add_parser("show", help="one run as JSON")
    show.add_argument("run", type=int)
    show.add_argument("--db")
    show.set_defaults(func=cmd_runs_show)
    diff = runs_sub.add_parser("diff", help="what changed between two runs")
    diff.add_argument("a", type=int)
    diff.add_argument("b", type=int)
    diff.add_argument("--db")
    diff.set_defaults(func=cmd_runs_diff)

    gate = sub.add_parser(
        "check",
        help="regression gate: exit 1 if a model's metric fell below its baseline",
        description="Evaluate MODEL on DATASET (or take its latest stored run with --current "
        "latest) and compare METRIC with a baseline among earlier runs of the same model and "
        "dataset. Exit 1 with a report on a regression larger than the tolerance, else 0.",
    )
    gate.add_argument("--dataset", required=True)
    gate.add_argument("--model", required=True)
    gate.add_argument("--baseline", default="best", help="best, latest or a run id")
    gate.add_argument("--tolerance", type=float, default=0.01)
    gate.add_argument("--metric", default="AP50")
    gate.add_argument("--current", choices=["evaluate", "latest"], default="evaluate",
                      help="evaluate now (stored result if inputs are unchanged) or take the "
                      "latest stored run")
    gate.add_argument("--significant", action="store_true",
                      help="fail only when the drop's paired bootstrap interval (over the "
                      "dataset's images) excludes zero, i.e. the drop is unlikely to be chance")
    gate.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                      help="bootstrap rounds for --significant")
    gate.add_argument("--seed", type=int, default=0, help="bootstrap seed for --significant")
    gate.add_argument("--device", default="auto")
    gate.add_argument("--db")
    gate.set_defaults(func=cmd_check)
