#!/usr/bin/env bash
# Builds the Gradescope autograder bundle: backprop-verifier's wheel beside setup.sh,
# run_autograder, config.sh and rubric.toml, zipped flat as Gradescope wants it.
# Usage: bash docs/gradescope/make-bundle.sh [OUT.zip]   (from the project's root)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(realpath -m "${1:-autograder.zip}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 -m pip wheel --quiet --no-deps --wheel-dir "$WORK" "$HERE/../.."
cp "$HERE/setup.sh" "$HERE/run_autograder" "$HERE/config.sh" "$HERE/rubric.toml" "$WORK/"
chmod +x "$WORK/setup.sh" "$WORK/run_autograder"
rm -f "$OUT"
(cd "$WORK" && python3 -m zipfile -c "$OUT" ./*)
echo "wrote $OUT"
