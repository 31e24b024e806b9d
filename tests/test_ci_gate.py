"""The CI gate by path: `cowdemo check` finds the runs `cowdemo evaluate` stored, given the same
--dataset (a name, a folder or a COCO JSON file) and --model (a name or a file), and the CI
example in docs/runs.md works as written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from training_support import synthetic

from cowdemo.cli import main
from cowdemo.runs import RunStore

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _results(coco: dict, shift: float) -> list[dict]:
    """Every ground-truth box as a detection, moved right by ``shift`` of its width."""
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
             "bbox": [a["bbox"][0] + shift * a["bbox"][2], *a["bbox"][1:]]}
            for a in coco["annotations"]]  # fmt: skip


def test_check_finds_the_runs_evaluate_stored_by_a_json_path(tmp_path):
    folder = synthetic(tmp_path / "val2014-100", n=3, seed=4, width=96, height=64)
    gt = folder / "instances_x.json"
    (folder / "annotations.json").rename(gt)
    coco = json.loads(gt.read_text())
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    results = tmp_path / "m.json"

    results.write_text(json.dumps(_results(coco, 0.0)))
    code, out, err = run_cli("evaluate", "--dataset", str(gt), "--results", str(results),
                             "--db", db)
    assert code == 0, err
    assert RunStore(db).list()[0].dataset == "instances_x"  # the file, not its folder
    code, out, err = run_cli("check", "--dataset", str(gt), "--model", "m", "--current",
                             "latest", "--db", db)
    assert code == 0, err
    assert out.startswith("OK m on instances_x")

    results.write_text(json.dumps(_results(coco, 0.6)))  # boxes off by 60%: AP50 falls to 0
    assert run_cli("evaluate", "--dataset", str(gt), "--results", str(results), "--db", db)[0] == 0
    code, out, err = run_cli("check", "--dataset", str(gt), "--model", "m", "--current",
                             "latest", "--db", db)
    assert code == 1, out + err
    assert out.startswith("REGRESSION m on instances_x: AP50 0.0000")
    # the folder holding it is another dataset (its annotations.json would be), never mixed up
    code, _, err = run_cli("check", "--dataset", str(folder), "--model", "m", "--current",
                           "latest", "--db", db)
    assert code == 2 and "No evaluation run of m on val2014-100" in err


def _docs_ci_command() -> tuple[str, str]:
    """The `env` value and the `run` script of the CI example in docs/runs.md, as written."""
    text = (REPO / "docs" / "runs.md").read_text()
    block = re.search(r"## A CI gate.*?```yaml\n(.*?)```", text, re.S).group(1)
    env = re.search(r"COWDEMO_RUNS_DB: (.+)", block).group(1).strip()
    script = block.split("run: |\n", 1)[1]
    return env, "\n".join(line.strip() for line in script.splitlines())


@pytest.mark.slow
def test_docs_ci_example_runs_as_written(tmp_path, demo_checkpoints):
    """The workflow step of docs/runs.md in a fresh workspace: a candidate checkpoint at
    checkpoints/cows-candidate.pt, a dataset folder at data/datasets/cows-val, the run database
    under ci-state/. With a better earlier run of the candidate stored, it exits 1 with the
    report line; on an empty history it exits 0."""
    env_value, script = _docs_ci_command()
    assert ".venv/bin/cowdemo check" in script
    workspace = tmp_path / "ws"
    (workspace / "checkpoints").mkdir(parents=True)
    (workspace / "ci-state").mkdir()
    (workspace / ".venv").symlink_to(REPO / ".venv")
    # a real cowdemo checkpoint (MobileNet Faster R-CNN, cows only) as the candidate
    (workspace / "checkpoints" / "cows-candidate.pt").write_bytes(
        (demo_checkpoints / "cows-finetuned.pt").read_bytes())
    synthetic(workspace / "data" / "datasets" / "cows-val", n=2, seed=3, width=96, height=64)
    db_url = env_value.replace("${{ github.workspace }}", str(workspace))
    env = {**os.environ, "COWDEMO_RUNS_DB": db_url, "COWDEMO_OFFLINE": "1",
           "COWDEMO_CHECKPOINTS": str(workspace / "checkpoints"),
           "COWDEMO_DATA": str(workspace / "data"), "TORCH_HOME": str(tmp_path / "torch")}

    def step() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=300)

    first = step()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith("OK cows-candidate on cows-val")
    runs = RunStore(db_url).list()
    assert [(r.model, r.dataset) for r in runs] == [("cows-candidate", "cows-val")]

    # an earlier, better run of the same model on the same dataset: now the step must fail
    RunStore(db_url).record("evaluation", "cows-candidate", {"AP50": 0.9, "AP": 0.6},
                            dataset="cows-val", created_at=1.0)
    second = step()
    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stdout.startswith("REGRESSION cows-candidate on cows-val: AP50 ")
    assert "vs 0.9000" in second.stdout
