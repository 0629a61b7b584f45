#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu, as root), from the
# unpacked bundle in $AUTOGRADER_ROOT/source. It installs backprop-verifier from the wheel the
# bundle carries (make-bundle.sh puts it there), or, when there is none, from PyPI's
# `backprop-verifier` at the version in BACKPROP_VERIFY_VERSION.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -q && apt-get install -y -q python3 python3-pip python3-venv
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
shopt -s nullglob
wheels=("$SOURCE"/backprop_verifier-*.whl)
if [ "${#wheels[@]}" -gt 0 ]; then
    "$ROOT/venv/bin/python" -m pip install --quiet "${wheels[0]}"
else
    "$ROOT/venv/bin/python" -m pip install --quiet "backprop-verifier${BACKPROP_VERIFY_VERSION:+==$BACKPROP_VERIFY_VERSION}"
fi
"$ROOT/venv/bin/backprop-verify" --help >/dev/null  # the image is unusable without it: fail the build here
