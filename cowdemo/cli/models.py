"""`cowdemo models`: every model the registry knows, whether it is ready, and the device."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_models(args: argparse.Namespace) -> int:
    from cowdemo.devices import describe_device, resolve_device
    from cowdemo.models.registry import list_models

    print(f"device: {describe_device(resolve_device(args.device))}")
    specs = list_models(Path(args.checkpoints) if args.checkpoints else None)
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name:<{width}}  {spec.status:<15}  {spec.description}")
        if spec.reason:
            print(f"{'':<{width}}  {'':<15}  └ {spec.reason}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list models, whether they are ready, and the device")
    models.add_argument("--device", default="auto")
    models.add_argument("--checkpoints", help="checkpoints folder (default: ./checkpoints)")
    models.set_defaults(func=cmd_models)
