#!/usr/bin/env bash
# Test-only install of detectron2 0.6 (Python sources only) into .cache/detectron2, for
# tests/test_detectron2_backend.py. Run by `scripts/setup.sh --test`; idempotent (a stamp).
#
# Source: the PyPI sdist pb1-detectron2==0.6, upstream detectron2 v0.6's Python package without
# its C++ sources; the R50-FPN Faster R-CNN runs on CPU without them. Four small fixes make it
# build and import with this project's torch 2.14 / Pillow 10 (scripts/detectron2-0.6.patch):
#   setup.py        no C++ extension (the sdist has no csrc/); model-zoo configs as package data
#                   from their place in the sdist (its setup.py looks for a top-level configs/)
#   model_zoo.py    find the config files beside the module, not through pkg_resources (gone
#                   from setuptools >= 81)
#   transform.py    Image.LINEAR -> Image.BILINEAR (the same filter; the alias left Pillow 10)
#   _C.py (new)     a stand-in for the compiled ops: modules importing it still import, using
#                   a C++ op (deformable conv, rotated boxes, fast COCO eval) raises ImportError
# Dependencies: requirements-detectron2.txt (pinned), also into .cache/detectron2 (--target), so
# .venv and its `pip check` stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.cache/detectron2
stamp=$target/.cowdemo-stamp
want=$(cat requirements-detectron2.txt scripts/detectron2-0.6.patch "$0" | sha256sum | cut -d' ' -f1)
[[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && exit 0

url=https://files.pythonhosted.org/packages/60/26/48f5bbb7ee492696a21da23303daeecdfe3942c498a70d34108acf63b2bd/pb1-detectron2-0.6.tar.gz
sha=5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29
echo "setup: installing detectron2 0.6 (test-only) into $target"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python - "$url" "$tmp/sdist.tar.gz" "$sha" <<'PY'
import hashlib, sys, urllib.request
url, out, sha = sys.argv[1:]
with urllib.request.urlopen(url, timeout=120) as r:
    data = r.read()
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"{url}: sha256 mismatch")
open(out, "wb").write(data)
PY
tar xzf "$tmp/sdist.tar.gz" -C "$tmp"
patch -s -d "$tmp/pb1-detectron2-0.6" -p1 <scripts/detectron2-0.6.patch
rm -rf "$target.new"
.venv/bin/python -m pip install -q --no-deps --target "$target.new" -r requirements-detectron2.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation --target "$target.new" \
  "$tmp/pb1-detectron2-0.6"
rm -rf "$target.new/tools" "$target.new/bin"  # the sdist's scripts and console entry points
echo "$want" >"$target.new/.cowdemo-stamp"
rm -rf "$target"
mv "$target.new" "$target"
