#!/usr/bin/env bash
# Sets everything up on a fresh Linux machine with Python 3.11, pip and apt: system packages,
# a virtual environment in .venv, the pinned requirements and cowdemo itself. Idempotent: a second
# run only checks stamps and returns in seconds.
#   scripts/setup.sh          what the app needs
#   scripts/setup.sh --test   plus what the tests need (Debian's chromium for browser tests, and a
#                             test-only detectron2 in .cache/detectron2)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  echo "setup: apt-get install ${missing[*]}"
  if ((apt_updated == 0)); then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# System packages: fonts for drawn labels; chromium for the browser tests and report PDFs;
# poppler-utils (pdftoppm) for the report PDF test.
system_pkgs=(fonts-dejavu-core)
((want_test)) && system_pkgs+=(chromium fonts-noto-color-emoji poppler-utils)
apt_install "${system_pkgs[@]}"

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv; "$PYTHON" -m venv .venv; }
fi

stamp=.venv/.cowdemo-requirements.sha256
want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: installing requirements into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$want" >"$stamp"
fi
mkdir -p checkpoints data

# A real cow photo: Debian's r-cran-cowplot ships one as example data. Unpack the package (without
# installing R) into .cache/test-assets (ignored by git, never committed): the tests read it, and
# the app's sample images and sample dataset start with it (cowdemo/samples.py). Without it they
# are synthetic only, so in app mode a failed fetch is a note, tried again only with --test.
photo=.cache/test-assets/cowplot/usr/lib/R/site-library/cowplot/extdata/cow.jpg
no_photo=.cache/test-assets/cowplot-unavailable
fetch_photo() {
  local tmp ok=1
  tmp=$(mktemp -d)
  chmod 777 "$tmp"  # apt-get download runs as the _apt user
  if ! (cd "$tmp" && apt-get download -qq r-cran-cowplot >/dev/null 2>&1); then
    # no or stale package lists: update them once (never asking for a password in app mode)
    if ((apt_updated == 0)); then
      if ((want_test)); then as_root apt-get update -qq || true
      elif [[ $(id -u) -eq 0 ]]; then apt-get update -qq || true
      else sudo -n apt-get update -qq 2>/dev/null || true
      fi
      apt_updated=1
    fi
    (cd "$tmp" && apt-get download -qq r-cran-cowplot >/dev/null 2>&1) || ok=0
  fi
  if ((ok)); then dpkg-deb -x "$tmp"/r-cran-cowplot_*.deb .cache/test-assets/cowplot || ok=0; fi
  rm -rf "$tmp"
  ((ok))
}
if [[ ! -f $photo ]] && { ((want_test)) || [[ ! -f $no_photo ]]; }; then
  echo "setup: fetching the real cow photo (Debian package r-cran-cowplot, unpacked, no R)"
  mkdir -p .cache/test-assets/cowplot
  if fetch_photo && [[ -f $photo ]]; then
    rm -f "$no_photo"
  else
    touch "$no_photo"
    echo "setup: could not fetch r-cran-cowplot; the samples are synthetic only and the" \
      "real-photo tests skip (scripts/setup.sh --test tries again)"
  fi
elif [[ -f $photo ]]; then
  rm -f "$no_photo"
fi
# Test mode: detectron2 0.6 (Python only, test-only) for the detectron2 backend's test; a failed
# install is a note (that one test then skips saying why), never a failed set-up.
if ((want_test)); then
  bash scripts/install-detectron2.sh || echo "setup: could not install detectron2 (test-only);" \
    "tests/test_detectron2_backend.py skips (run scripts/install-detectron2.sh to see why)"
fi
echo "setup: ready ($(.venv/bin/python --version), $(.venv/bin/python -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'))"
