"""The one table format every benchmark prints, so `bench/run_all.py` can collect them:

    machine: <cpu>, <cores>, <gpu>, Python x.y
    | measurement | cowdemo | baseline | ratio |
"""

from __future__ import annotations

HEADER = "| measurement | cowdemo | baseline | ratio |\n| --- | --- | --- | --- |"


def ratio_text(ours: float, base: float) -> str:
    """"39.1x faster" ("1.52x faster" under 10x) when cowdemo takes less time than the
    baseline, else "2.89x the time"."""
    if ours <= 0 or base <= 0:
        return "n/a"
    if ours < base:
        speed_up = base / ours
        return f"{speed_up:.2f}x faster" if speed_up < 10 else f"{speed_up:.1f}x faster"
    return f"{ours / base:.2f}x the time"


def row(measurement: str, ours: float, base: float, baseline: str, unit: str = "s") -> str:
    return (f"| {measurement} | {ours:.4g} {unit} | {base:.4g} {unit} ({baseline}) | "
            f"{ratio_text(ours, base)} |")
