"""`cowdemo export NAME --format onnx`: a YOLOX fine-tune as an ONNX model the ONNX backend (and
any onnxruntime user) loads with its class names."""

from __future__ import annotations

import argparse


def cmd_export(args: argparse.Namespace) -> int:
    from cowdemo.models.export import export_onnx

    path = export_onnx(args.name, args.out)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a YOLOX fine-tune to ONNX")
    p.add_argument("name", help="the fine-tune (registry name or checkpoints/NAME.pt)")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", help="output file (default: NAME-onnx.onnx beside the checkpoint)")
    p.set_defaults(func=cmd_export)
