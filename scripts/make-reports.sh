#!/usr/bin/env bash
# Regenerate the committed example reports in reports/ from examples/:
#   bash scripts/make-reports.sh
# Every format for a failing and a passing check, the worked example through `grad`, and the
# reference-agreement report of `crosscheck --examples 2000 --seed 1`. Exit codes 1 (a failing
# example) are expected here; anything else stops the script.
set -uo pipefail
cd "$(dirname "$0")/.."
out=reports/examples
mkdir -p "$out"
run() { "$@"; code=$?; [ "$code" -le 1 ] || { echo "failed ($code): $*" >&2; exit "$code"; }; }
for fmt in text markdown json junit html; do
  ext=$fmt; [ "$fmt" = text ] && ext=txt; [ "$fmt" = markdown ] && ext=md; [ "$fmt" = junit ] && ext=xml
  run python -m verifier check examples/bug_missing_activation_derivative.py --quiet \
      --cases-dir "$out" --format "$fmt" --output "$out/check-fail.$ext"
  run python -m verifier check examples/correct_vectorized.py --quiet --format "$fmt" --output "$out/check-pass.$ext"
done
python - <<'PY'
import json
from verifier import casefile
json.dump(casefile.WORKED_EXAMPLE, open("reports/examples/worked_example.json", "w"))
PY
run python -m verifier grad "$out/worked_example.json" --output "$out/grad-worked-example.txt"
run python -m verifier crosscheck --examples 2000 --seed 1 --quiet --format markdown --output reports/crosscheck.md
echo "reports written to reports/"
