"""`cowdemo report`: one self-contained HTML file (and a PDF) comparing models on a dataset
and a tracked video, for people who will not install anything.

    cowdemo report --dataset cows --model frcnn-r50-fpn-coco --model cows-finetuned \\
        --video cows.mp4 --gt gt.txt --out report.html --pdf report.pdf
    cowdemo report --runs 3 4 --out report.html        # from stored runs (`cowdemo runs list`)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from cowdemo.errors import CowdemoError
    from cowdemo.report import ReportInputs, build_report, html_to_pdf, make_report, write_html
    from cowdemo.report.build import split_runs
    from cowdemo.runs import RunStore

    store = RunStore(args.db) if args.db else RunStore()
    if args.runs:
        if args.model or args.dataset or args.video:
            raise CowdemoError("Give either --runs or --dataset/--model/--video, not both.")
        report = build_report(store, *split_runs(store, args.runs))
    else:
        inputs = ReportInputs(args.dataset, args.model or [], args.video, args.gt, args.device,
                              tracker={"family": args.tracker},
                              max_side=args.max_side or None, stride=args.stride)
        report = make_report(inputs, store, say=lambda text: print(text, file=sys.stderr),
                             progress_factory=_bar)  # fmt: skip
    out = write_html(report, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if args.pdf:
        pdf = html_to_pdf(out, args.pdf)
        print(f"wrote {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    print("runs: " + ", ".join(str(i) for i in report.data["runs"])
          + " (`cowdemo runs show ID` prints one)")
    return 0


def _bar(label: str, total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="img", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="a self-contained HTML (and PDF) report comparing models",
        description=__doc__.split("\n\n")[0],
    )  # fmt: skip
    parser.add_argument("--dataset", help="dataset name or folder (COCO) to evaluate on")
    parser.add_argument("--model", action="append", help="model name or path (repeat: A, B)")
    parser.add_argument("--video", help="a video to track with each model")
    parser.add_argument("--gt", help="MOTChallenge ground truth of the video, for MOT metrics")
    parser.add_argument("--runs", type=int, nargs="+", metavar="ID",
                        help="build the report from these stored runs instead")
    parser.add_argument("--out", type=Path, default=Path("report.html"),
                        help="HTML file to write (default report.html)")
    parser.add_argument("--pdf", type=Path, help="also print the report to this PDF")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-side", type=int, default=1280,
                        help="video frames scaled down to this longer side (0: original)")
    parser.add_argument("--stride", type=int, default=1, help="track every n-th video frame")
    parser.add_argument("--tracker", choices=["norfair", "bytetrack"], default="norfair",
                        help="tracker for the video (default norfair, the notebook's settings)")
    parser.add_argument("--db", help="run database URL (default sqlite:///data/runs.sqlite)")
    parser.set_defaults(func=cmd_report)
