"""Self mode against its anchor on the same function; writes reports/self_mode.md.

    pip install -e '.[bench]'            # torch, for torch.autograd.gradcheck
    python benchmarks/self_mode.py       # a few minutes on 2 cores; --help for the options

One network, 64-128-64-10 (17,226 parameters): tanh hidden layers, an identity output, the sse
loss J = sum (y - t)^2, batch 16, float64; parameters and data drawn once by the project's
`case_from_draw(..., "normal", seed 0)` and written to a case file that both sides read. For a
correct subject, a planted bug (the missing factor 2 of d(y - t)^2/dy: every entry wrong by the
factor 1/2, which self mode's hypotheses explain) and a planted bug no hypothesis explains (one
entry of dW1, [3, 5], 1.5 times the right one: self mode's per-entry fallback must find it):

- the anchor: a whole `python` process that imports torch, reads the case file and runs
  torch.autograd.gradcheck(J, [W1, b1, ...], fast_mode=False) on the same math written in torch
  (the bug as a custom autograd Function whose backward forgets the 2, as benchmarks/anchors.py;
  the one-entry bug as an identity Function on W1 whose backward scales that entry);
  its verdict from the exit code;
- this project: a whole `python -m verifier check SUBJECT --against self --case CASE` process
  (benchmarks/self_subject_correct.py, self_subject_bug.py, self_subject_entry.py: a numpy
  `gradients` and the file's own `loss`); its verdict from the exit code, and on the bugs the
  per-entry rows of its report and how each tensor was judged.

Runs alternate between the two sides; times are medians of wall-clock seconds. BLAS and torch
run one thread each (the machine has 2 cores and is shared). The load average is recorded. The project's
bytecode is compiled first (anchors.compile_project), as an installed copy has it: where
PYTHONDONTWRITEBYTECODE is set a checkout would otherwise compile its modules in every process.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import anchors  # noqa: E402

SIZES = (64, 128, 64, 10)
BATCH = 16
TARGET = 20.0
SUBJECTS = {
    "correct": ROOT / "benchmarks" / "self_subject_correct.py",
    "bug": ROOT / "benchmarks" / "self_subject_bug.py",
    "one entry": ROOT / "benchmarks" / "self_subject_entry.py",
}
EXPECTED = {"correct": "pass", "bug": "fail", "one entry": "fail"}
TARGETED = ("correct", "bug")  # the issue's done-when; the one-entry bug is reported beside them


def write_case(path: Path) -> None:
    from verifier import casefile
    from verifier.records import NetworkSpec
    from verifier.strategies import case_from_draw

    spec = NetworkSpec(SIZES, ("tanh",) * (len(SIZES) - 2) + ("identity",), "sse")
    casefile.save(case_from_draw(spec, BATCH, "normal", 0), str(path))


def anchor(case_path: str, subject: str) -> int:
    """The anchor's process body: gradcheck(fast_mode=False) on the case; exit 0 pass, 1 fail."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    data = json.loads(Path(case_path).read_text())
    flat = [
        torch.tensor(np.asarray(p[k], dtype=np.float64), requires_grad=True) for p in data["params"] for k in ("W", "b")
    ]
    X = torch.tensor(np.asarray(data["X"], dtype=np.float64))
    T = torch.tensor(np.asarray(data["T"], dtype=np.float64))

    class SSE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, Y):
            ctx.save_for_backward(Y)
            return ((Y - T) ** 2).sum()

        @staticmethod
        def backward(ctx, g):
            (Y,) = ctx.saved_tensors
            return g * (Y - T)  # BUG: 2 (Y - T)

    class Entry(torch.autograd.Function):
        @staticmethod
        def forward(ctx, W):
            return W.clone()

        @staticmethod
        def backward(ctx, g):
            m = torch.ones_like(g)
            m[3, 5] = 1.5  # BUG: one entry of dW1
            return g * m

    def J(*params):
        if subject == "one entry":
            params = (Entry.apply(params[0]),) + params[1:]
        A = X
        for l in range(len(params) // 2):
            Z = A @ params[2 * l].T + params[2 * l + 1]
            A = torch.tanh(Z) if l < len(params) // 2 - 1 else Z
        return SSE.apply(A) if subject == "bug" else ((A - T) ** 2).sum()

    ok = torch.autograd.gradcheck(J, flat, fast_mode=False, raise_exception=False)
    return 0 if ok else 1


def commands(case_path: str, scratch: str) -> dict:
    me = str(Path(__file__).resolve())
    out = {}
    for s, subject in SUBJECTS.items():
        out[("gradcheck", s)] = [sys.executable, me, "--anchor", s, "--case", case_path]
        out[("self", s)] = [
            sys.executable,
            "-m",
            "verifier",
            "check",
            str(subject),
            "--against",
            "self",
            "--case",
            case_path,
            "--cases-dir",
            scratch,
            "--format",
            "json",
        ]
    return out


def run_once(cmd) -> tuple[float, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    return seconds, {0: "pass", 1: "fail"}.get(proc.returncode, f"exit {proc.returncode}"), proc.stdout


def per_entry(stdout: str) -> str:
    """What self mode's JSON report says per entry of the failing tensors, and how it judged them."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return "no JSON report"
    rows = [f for f in report.get("failures", []) if f.get("kind") == "mismatch"]
    if not rows:
        return "no mismatch rows"
    labels = sorted(
        {f"{f.get('diagnosis')}: {f['detail'].split('the gradient is ')[-1]}" for f in rows if f.get("diagnosis")}
    )
    counts = ", ".join(f"{f['layer']}{f['param']} {f['detail'].split(' entries')[0]}" for f in rows)
    worst = rows[0]
    judged = report.get("extra", {}).get("self_judged", {})
    how = ", ".join(f"{judged.get(k, 0)} {k}" for k in ("direction", "hypothesis", "entries"))
    return (
        f"{len(rows)} failing tensor(s): {counts} entries wrong; worst {worst['layer']}{worst['param']}"
        f"{worst.get('index')} got {worst.get('got'):.6g}, expected {worst.get('expected'):.6g}; "
        f"tensors judged by (direction, hypothesis, entries): {how}; "
        f"{'; '.join(labels) or 'no diagnosis label'}; how the first row says it was judged: {judged_text(worst['detail'])}"
    )


def judged_text(detail: str) -> str:
    """The row's "entries judged ..." clause, up to the parenthesis it closes."""
    text = detail.split("; entries judged ")[-1]
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return text[:i]
    return text


def inside(stdout: str) -> float | None:
    """The seconds the run reports for its own work (from opening the sandbox to the verdict)."""
    try:
        return float(json.loads(stdout)["seconds"])
    except (ValueError, KeyError, TypeError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side (alternated); median reported")
    ap.add_argument("--output", default=str(ROOT / "reports" / "self_mode.md"))
    ap.add_argument("--anchor", choices=tuple(SUBJECTS), help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.anchor:
        return anchor(args.case, args.anchor)
    bytecode = anchors.compile_project()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        case_path = str(Path(scratch) / "case.json")
        write_case(Path(case_path))
        cmds = commands(case_path, str(Path(scratch) / "cases"))
        times: dict = {k: [] for k in cmds}
        verdicts, notes, own = {}, {}, {}
        for _ in range(args.repeats):
            for key, cmd in cmds.items():  # alternated: each side sees the same load
                seconds, verdict, stdout = run_once(cmd)
                times[key].append(seconds)
                verdicts.setdefault(key, set()).add(verdict)
                if key[0] == "self":
                    own.setdefault(key[1], []).append(inside(stdout))
                if key[0] == "self" and key[1] != "correct":
                    notes[key[1]] = per_entry(stdout)
    load_after = os.getloadavg()
    text = report(times, verdicts, notes, own, args.repeats, load_before, load_after, bytecode)
    Path(args.output).write_text(text)
    print(text)
    return 0


def _median(xs) -> str:
    xs = [x for x in xs or [] if x is not None]
    return f"{statistics.median(xs):.3g} s" if xs else "-"


def report(times, verdicts, notes, own, repeats, load_before, load_after, bytecode) -> str:
    import numpy as np

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {s: med[("gradcheck", s)] / med[("self", s)] for s in SUBJECTS}
    same = {s: verdicts[("gradcheck", s)] == verdicts[("self", s)] == {EXPECTED[s]} for s in SUBJECTS}
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    lines = [
        "# Self mode against torch.autograd.gradcheck(fast_mode=False), whole process vs whole process",
        "",
        "Written by `python benchmarks/self_mode.py` (see its docstring); re-run it to refresh every number.",
        f"Run {time.strftime('%Y-%m-%d %H:%M')}; {repeats} runs of each side, alternated; medians of wall-clock seconds.",
        f"BLAS and torch use one thread. Load average before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}. {bytecode}",
        "",
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch_version}, {os.cpu_count()} cores.",
        "",
        f"Network {'-'.join(map(str, SIZES))} (17,226 parameters), tanh, tanh, identity, loss sse, batch {BATCH}, "
        "float64, one case (seed 0) read by both sides from the same case file.",
        "",
        "| subject | gradcheck fast_mode=False: median s (runs) | self mode: median s (runs) | verdicts | gradcheck / self |",
        "|---|---|---|---|---|",
    ]
    for s in SUBJECTS:
        g, m = times[("gradcheck", s)], times[("self", s)]
        v = f"{'/'.join(sorted(verdicts[('gradcheck', s)]))} / {'/'.join(sorted(verdicts[('self', s)]))}"
        lines.append(
            f"| {s} | {med[('gradcheck', s)]:.3g} ({', '.join(f'{x:.3g}' for x in g)}) | "
            f"{med[('self', s)]:.3g} ({', '.join(f'{x:.3g}' for x in m)}) | {v} | {ratio[s]:.1f}x |"
        )
    worst = min(ratio[s] for s in TARGETED)
    lines += [
        "",
        "Same verdicts (gradcheck's and self mode's, as expected: "
        + ", ".join(f"{s}: {EXPECTED[s]} {'yes' if same[s] else 'NO'}" for s in SUBJECTS)
        + ").",
        f"Target: self mode at least {TARGET:g}x faster on the correct subject and the bug: "
        f"{'met' if worst >= TARGET else 'NOT met'} (the smaller ratio is {worst:.1f}x). "
        f"The one-entry bug, outside the target: {ratio['one entry']:.1f}x.",
        "",
        "Of self mode's whole-process time, the run itself (the `seconds` of its JSON report: sandbox, "
        "calls, evaluations, judgement, case files; not the interpreter's start-up, imports and report "
        "writing): " + ", ".join(f"{s} {_median(own.get(s))}" for s in SUBJECTS) + ".",
        "",
        f"Self mode on the bug: {notes.get('bug', '-')}.",
        "",
        f"Self mode on the one-entry bug: {notes.get('one entry', '-')}.",
        "",
        "How self mode spends its time. Correct subject: one batch of loss evaluations (13 a tensor: central",
        "differences, Richardson, the complex step and a noise ladder) judges a random directional derivative",
        "of each tensor. Bug: each failing tensor's fix is guessed from the failed direction (here 2 times",
        "the returned gradient) and put to the same directional test along a fresh random direction (5",
        "evaluations a tensor, one more batch); a confirmed guess is the right gradient at the confidence a",
        "pass has, and every entry is judged against it, with no per-entry evaluation (per-entry evaluation",
        "was 17,226 complex-step evaluations here). One-entry bug: no guess passes the fresh direction, so",
        "the tensor is cut into 16 blocks of entries, each put to the directional test, failing blocks cut",
        "again, and only the entries of the last small failing blocks are evaluated one by one (complex",
        "step, confirmed by central differences at a sample). gradcheck(fast_mode=False) evaluates J twice",
        "an entry and compares the whole Jacobian.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
