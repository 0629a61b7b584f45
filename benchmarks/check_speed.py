"""Wall time of a whole `backprop-verify check` process, start-up included.

    python benchmarks/check_speed.py [--runs 5] [--examples 200]

Times `python -m verifier check examples/correct_vectorized.py --examples 200` (a pass) and the
same on a buggy example (a fail: exploring, shrinking, diagnosing), each `--runs` times, and
writes the medians to reports/check_speed.md (or --output). Target: <= 10 s wall for each, on
a 2-core machine (the correct example's was 15 s until the big-network work tightened it). The load average is recorded
before and after: other jobs on the machine slow every run down.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "examples/correct_vectorized.py": (10.0, 0),
    "examples/bug_sign_flip.py": (10.0, 1),
    "examples/bug_forgot_factor_2.py": (10.0, 1),
    "examples/bug_mean_instead_of_sum.py": (10.0, 1),
    "examples/bug_missing_activation_derivative.py": (10.0, 1),
}


def _load():
    return os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3


def time_command(cmd, runs, expect):
    """[(wall seconds, exit code, CPU seconds)] of `runs` runs of `cmd`, from ROOT, output
    discarded. CPU seconds (user + system of the process and its sandboxed child) depend far
    less on other jobs than the wall time does."""
    out = []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.append((seconds, proc.returncode, cpu))
        status = "" if proc.returncode == expect else f"  UNEXPECTED exit {proc.returncode}: {proc.stderr[-300:]}"
        print(
            f"  run {i + 1}/{runs}: {seconds:.2f} s wall, {cpu:.2f} s CPU, exit {proc.returncode}{status}",
            file=sys.stderr,
            flush=True,
        )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--output", default=str(ROOT / "reports" / "check_speed.md"), help="'-' for none")
    args = ap.parse_args(argv)
    rows, ok = [], True
    load_before = _load()
    for impl, (target, expect) in TARGETS.items():
        cmd = [sys.executable, "-m", "verifier", "check", impl, "--examples", str(args.examples)]
        shown = f"python -m verifier check {impl} --examples {args.examples}"
        print(shown, file=sys.stderr, flush=True)
        load = _load()[0]
        runs = time_command(cmd, args.runs, expect)
        secs = [s for s, _, _ in runs]
        med = statistics.median(secs)
        cpu = statistics.median(c for _, _, c in runs)
        codes = sorted({c for _, c, _ in runs})
        good = med <= target and codes == [expect]
        ok &= good
        rows.append(
            (
                f"`{shown}`",
                f"{med:.2f}",
                f"{min(secs):.2f}",
                f"{max(secs):.2f}",
                f"{cpu:.2f}",
                ", ".join(map(str, codes)) + ("" if codes == [expect] else f" (expected {expect})"),
                f"<= {target:g} s",
                "met" if good else "MISSED",
                f"{load:.2f}",
            )
        )
    load_after = _load()
    lines = [
        "# Check speed: one whole `check` process, start-up included",
        "",
        f"Command: `python benchmarks/check_speed.py --runs {args.runs} --examples {args.examples}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}.  ",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.2f}' for x in load_after)}. "
        + (
            "A load above the core count means other jobs shared the machine and every time below is inflated by them."
            if max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
            else "The machine was otherwise quiet."
        ),
        "",
        "Each command is run as a fresh process (interpreter start, imports, the sandboxed child, "
        "every case, shrinking and diagnosis for the buggy examples, the text report to a discarded "
        f"stdout), {args.runs} times in a row; the table gives the median wall time, and the median CPU "
        "time (user + system, the process and its children), which other jobs inflate far less.",
        "",
        "| command | median wall s | min s | max s | median CPU s | exit | target (wall) | | load at start |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {os.path.relpath(args.output, ROOT)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
