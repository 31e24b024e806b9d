"""Run every benchmark of the project and write their tables into BENCHMARKS.md.

Each `bench/bench_*.py` prints a `machine:` line and rows in bench/table.py's format, every row
a ratio against a baseline measured in the same run. This script runs them one after another
(on a quiet machine: they measure time), collects the rows and replaces the generated section
of BENCHMARKS.md between its markers.

    .venv/bin/python bench/run_all.py [--only eval,predict] [--dry-run]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench/run_all.py: begin -->", "<!-- bench/run_all.py: end -->"


def scripts(only: set[str] | None) -> list[Path]:
    found = sorted((REPO / "bench").glob("bench_*.py"))
    return [p for p in found if only is None or p.stem.removeprefix("bench_") in only]


def run(script: Path) -> tuple[str, list[str], str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=REPO, timeout=3600)
    took = time.perf_counter() - start
    lines = proc.stdout.splitlines()
    machine = next((ln.removeprefix("machine: ") for ln in lines if ln.startswith("machine:")),
                   "")
    header = ("| measurement", "| ---")
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith(header)]
    status = f"ok in {took:.0f} s" if proc.returncode == 0 else (
        f"failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    skipped = [ln for ln in lines if ln.startswith("skipped")]
    if skipped and not rows:
        status = skipped[0]
    return machine, rows, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names, e.g. eval,predict")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    sections, failed = [], False
    for script in scripts(only):
        print(f"running {script.name} ...", flush=True)
        machine, rows, status = run(script)
        print(f"  {status}")
        for line in rows:
            print(f"  {line}")
        failed |= status.startswith("failed")
        sections.append(f"### {script.name} ({status})\n\nMachine: {machine or 'n/a'}\n\n"
                        "| measurement | cowdemo | baseline | ratio |\n| --- | --- | --- | --- |\n"
                        + "\n".join(rows))
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    generated = f"{BEGIN}\n## Latest full run ({stamp})\n\n" + "\n\n".join(sections) + f"\n{END}"
    if args.dry_run:
        print(generated)
        return 1 if failed else 0
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + generated + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)
    print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
