"""Side-by-side timing of this project against the anchors, in one run; writes reports/benchmarks.md.

    pip install -e '.[bench]'          # torch, for torch.autograd.gradcheck
    python benchmarks/run.py           # about 10 minutes on 2 cores; --help for the options

On each network (default 64-128-64-10 and 256-256-256-10; tanh hidden layers, an identity
output, the sse loss, batch 16, float64; parameters and data drawn once, by the project's
`case_from_draw(..., "normal", seed 0)`, and shared by every method), for a correct subject and
a planted bug (benchmarks/subject_correct.py, benchmarks/subject_bug.py: the missing factor 2):

- torch.autograd.gradcheck, fast_mode=False and fast_mode=True (benchmarks/anchors.py);
- the plain numpy per-entry central-difference loop (benchmarks/anchors.py);
- this project, in this process, one case: what `check --mode full` and `--mode fast` do for
  each case (the rows are explained at the end of the report);
- this project as a whole process: `python -m verifier check SUBJECT --sizes ... --batch 16
  --examples 1 --activations tanh tanh identity --loss sse [--mode fast]` (a case Hypothesis
  draws for that shape), and `python -m verifier check SUBJECT --case FILE` on the case file of
  the very network above, beside torch as a whole process on the same file
  (`python benchmarks/torch_process.py FILE [--bug]`: interpreter, numpy, torch, gradcheck).

Then, whole processes only: `check examples/correct_vectorized.py --examples N` (the default
200 generated cases) and the full check of the --big network (default 2048-2048-2048-10, batch
16) with its peak resident memory.

Then 20 submissions (copies of examples/, correct and buggy) checked with --jobs 1 and --jobs 2
(twice each, alternated); then the JAX compile comparison (benchmarks/jax_compile.py).
Times are medians over --repeats runs (a method whose first run takes over LONG seconds runs
once). BLAS and torch run one thread each (the machine has 2 cores and is shared): set before
numpy is imported. The load average is recorded before and after each part.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import shutil
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
import numpy as np  # noqa: E402

from verifier.records import NetworkSpec  # noqa: E402
from verifier.strategies import case_from_draw  # noqa: E402

LONG = 20.0  # seconds: a method slower than this on its first run is not repeated
COLD = "full, cold (the first check of the process)"
JAX = "full with JAX as a third reference"
JAX_COLD = "full with JAX as a third reference, cold (JAX compiles)"
PROCESS_CASE = "process: check --case FILE (the same values as torch)"
PROCESS_TORCH = "process: torch gradcheck fast_mode=False (benchmarks/torch_process.py FILE)"
SUBJECTS = {"correct": ROOT / "benchmarks" / "subject_correct.py", "bug": ROOT / "benchmarks" / "subject_bug.py"}


def timed(fn, repeats):
    """(median seconds, [seconds...], last result) of fn() over `repeats` runs (1 if slow)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if times[0] > LONG:
            break
    return statistics.median(times), times, result


def network(sizes, batch):
    spec = NetworkSpec(tuple(sizes), ("tanh",) * (len(sizes) - 2) + ("identity",), "sse")
    return case_from_draw(spec, batch, "normal", 0)


def _module(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def project_rows(case, repeats, scratch):
    """Rows (method -> subject -> (median, times, verdict)) of this project, in this process.

    "The check itself" is check_case with the subject's sandbox child already running (one child
    serves every case of a run); run_check(case=...) adds the child's start and, on a failure,
    the diagnosis."""
    from verifier.casefile import spec_dict
    from verifier.judge.full import judge_gradients
    from verifier.judge.oracle import Oracle
    from verifier.judge.references import full_oracles
    from verifier.records import RunConfig
    from verifier.run.check import check_case, run_check, to_user
    from verifier.sandbox import Sandbox

    full, fast = RunConfig(mode="full"), RunConfig(mode="fast", seed=0)

    def verdict(failures):
        return "fail" if failures else "pass"

    def with_jax(box):
        oracle = Oracle(case, (*full_oracles(case), "jax_reverse"))
        out = box.gradients(to_user(case.params, None), case.X, case.T, spec_dict(case.spec))
        return verdict(judge_gradients(case, oracle, out.grads, out.loss)[0])

    def once(fn):
        start = time.perf_counter()
        v = fn()
        seconds = time.perf_counter() - start
        return {"correct": (seconds, [seconds], v)}

    rows = {}
    for subject, path in SUBJECTS.items():
        with Sandbox(str(path)) as box:
            info = box.describe()
            if subject == "correct":  # first of the process, then first of JAX's bucket
                rows[COLD] = once(lambda: verdict(check_case(box, info, case, full)[0]))
                rows[JAX_COLD] = once(lambda: with_jax(box))
            rows.setdefault("full", {})[subject] = timed(lambda: verdict(check_case(box, info, case, full)[0]), repeats)
            rows.setdefault(JAX, {})[subject] = timed(lambda: with_jax(box), repeats)
            rows.setdefault("fast", {})[subject] = timed(lambda: verdict(check_case(box, info, case, fast)[0]), repeats)
    for mode in ("full", "fast"):
        rows[f"run_check(case=...) --mode {mode}"] = {
            s: timed(lambda: run_check(str(path), case=case, mode=mode, cases_dir=scratch).verdict, repeats)
            for s, path in SUBJECTS.items()
        }
    return rows


def anchor_rows(case, repeats, torch_ok):
    rows = {}
    if torch_ok:
        for fast_mode, label in ((False, "torch gradcheck fast_mode=False"), (True, "torch gradcheck fast_mode=True")):
            rows[label] = {s: timed(lambda: anchors.gradcheck(case, fast_mode, s == "bug"), repeats) for s in SUBJECTS}
    rows["numpy per-entry loop"] = {}
    for s, path in SUBJECTS.items():
        grads = _module(path).gradients
        med, times, (verdict, worst) = timed(lambda: anchors.numpy_loop(case, grads), repeats)
        rows["numpy per-entry loop"][s] = (med, times, f"{verdict} (max rel {worst:.1e})")
    return rows


def process_rows(sizes, batch, repeats, scratch):
    """`python -m verifier check ...` as a whole process; its verdict from the exit code."""
    rows = {}
    for mode in ("full", "fast"):
        label = f"process: check --mode {mode} --examples 1"
        rows[label] = {}
        for s, path in SUBJECTS.items():
            cmd = [
                sys.executable,
                "-m",
                "verifier",
                "check",
                str(path),
                "--sizes",
                ",".join(map(str, sizes)),
                "--batch",
                str(batch),
                "--examples",
                "1",
                "--activations",
                *(["tanh"] * (len(sizes) - 2)),
                "identity",
                "--loss",
                "sse",
                "--mode",
                mode,
                "--quiet",
                "--cases-dir",
                scratch,
            ]

            def run():
                code = subprocess.run(cmd, cwd=ROOT, capture_output=True, env=_env()).returncode
                return {0: "pass", 1: "fail"}.get(code, f"exit {code}")

            rows[label][s] = timed(run, repeats)
    return rows


def same_case_rows(case, repeats, scratch, torch_ok):
    """The same case file, the same values, as two whole processes: `check SUBJECT --case FILE`
    against `python benchmarks/torch_process.py FILE` (torch imported, gradcheck fast_mode=False)."""
    from verifier import casefile

    path = casefile.save(case, Path(scratch) / f"bench-{'-'.join(map(str, case.spec.sizes))}.json")
    verdict = {0: "pass", 1: "fail"}
    rows = {PROCESS_CASE: {}}
    for s, subject in SUBJECTS.items():
        cmd = [sys.executable, "-m", "verifier", "check", str(subject), "--case", path, "--quiet"]
        cmd += ["--cases-dir", scratch]
        rows[PROCESS_CASE][s] = timed(lambda: verdict.get(_run(cmd), "error"), repeats)
    if torch_ok:
        rows[PROCESS_TORCH] = {}
        for s in SUBJECTS:
            cmd = [
                sys.executable,
                str(ROOT / "benchmarks" / "torch_process.py"),
                path,
                *(["--bug"] if s == "bug" else []),
            ]
            rows[PROCESS_TORCH][s] = timed(lambda: verdict.get(_run(cmd), "error"), repeats)
    return rows


def _run(cmd) -> int:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, env=_env()).returncode


def peak_process(cmd):
    """(seconds, exit code, peak resident MB) of one whole process: its own high-water mark
    (VmHWM in /proc, read every 5 ms while it runs; the sandbox child peaks lower). wait4's
    maxrss would not do: a child forked from this process, torch loaded, inherits its maximum."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_kb = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                peak_kb = max([peak_kb] + [int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")])
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    return time.perf_counter() - start, proc.returncode, peak_kb / 1024


def whole_rows(repeats, scratch, big, examples):
    """Whole processes beside the torch figure: `check` on `examples` generated cases (every
    activation and loss, examples/correct_vectorized.py), and the full check of the `big`
    network (benchmarks/subject_correct.py, --examples 1) with its peak memory."""
    default = [sys.executable, "-m", "verifier", "check", str(ROOT / "examples" / "correct_vectorized.py")]
    default += ["--examples", str(examples), "--quiet", "--cases-dir", scratch]
    cases = timed(lambda: {0: "pass"}.get(_run(default), "error"), repeats)
    cmd = [sys.executable, "-m", "verifier", "check", str(SUBJECTS["correct"]), "--sizes", ",".join(map(str, big))]
    cmd += ["--batch", "16", "--examples", "1", "--activations", *(["tanh"] * (len(big) - 2)), "identity"]
    cmd += ["--loss", "sse", "--quiet", "--cases-dir", scratch]
    runs = [peak_process(cmd) for _ in range(repeats)]
    params = _params(big) * 8 / 2**20
    # the same command on a tiny network of the same depth: the interpreter, the libraries and
    # the harness, which every check pays whatever its size
    tiny = ",".join(["8"] * (len(big) - 1) + ["2"])
    small = [tiny if c == ",".join(map(str, big)) else c for c in cmd]
    floor = min(peak_process(small)[2] for _ in range(repeats))
    # a subject with a train_step (examples/correct_vectorized.py): its update is judged too
    stepping = [str(ROOT / "examples" / "correct_vectorized.py") if c == str(SUBJECTS["correct"]) else c for c in cmd]
    steps = [peak_process(stepping) for _ in range(repeats)]
    fast = [peak_process(cmd + ["--mode", "fast"]) for _ in range(repeats)]
    return {"cases": (examples, cases), "big": (big, runs, params), "floor": floor, "train_step": steps, "fast": fast}


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def jobs_rows(count, examples, scratch):
    """Seconds for `count` submissions with --jobs 1 and --jobs 2 (one run each), and exit codes."""
    pool = sorted((ROOT / "examples").glob("*.py"))
    folder = Path(scratch) / "class"
    folder.mkdir()
    files = []
    for k in range(count):
        src = pool[k % len(pool)]
        dst = folder / f"s{k + 1:02d}_{src.name}"
        shutil.copy(src, dst)
        files.append(str(dst))
    times, codes = {1: [], 2: []}, {}
    for jobs in (1, 2, 2, 1):  # alternated, so a change of load touches both alike
        cmd = [
            sys.executable,
            "-m",
            "verifier",
            "check",
            *files,
            "--jobs",
            str(jobs),
            "--examples",
            str(examples),
            "--quiet",
            "--cases-dir",
            str(Path(scratch) / "cases"),
            "--output",
            str(Path(scratch) / f"out{jobs}"),
        ]
        start = time.perf_counter()
        codes[jobs] = subprocess.run(cmd, cwd=ROOT, capture_output=True, env=_env()).returncode
        times[jobs].append(time.perf_counter() - start)
    return {j: (statistics.median(t), codes[j], t) for j, t in times.items()}, [Path(f).name for f in files]


def machine():
    """What the numbers were measured on."""
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "unknown")
        with open("/proc/meminfo") as f:
            kb = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal"))
            info["memory"] = f"{kb / 2**20:.1f} GiB"
    except OSError:
        info.setdefault("cpu", platform.processor() or "unknown")
    for name in ("jax", "torch"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = "not installed"
    info["system"] = f"{platform.system()} {platform.release()}"
    return info


def load():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv=None):
    p = argparse.ArgumentParser(description="Time this project against torch.autograd.gradcheck and a numpy loop.")
    p.add_argument("--sizes", nargs="+", default=["64,128,64,10", "256,256,256,10"], help="networks n_0,...,n_L")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="runs per method (the median is reported)")
    p.add_argument("--submissions", type=int, default=20, help="implementations for the --jobs comparison (0: skip)")
    p.add_argument("--examples", type=int, default=200, help="cases per submission in the --jobs comparison")
    p.add_argument("--jax-cases", type=int, default=200, help="cases for the JAX compile comparison (0: skip)")
    p.add_argument("--big", default="2048,2048,2048,10", help="the big network, whole process only ('': skip)")
    p.add_argument("--output", default=str(ROOT / "reports" / "benchmarks.md"))
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
        torch_ok = True
    except ImportError:
        print("torch is not installed (pip install -e '.[bench]'): gradcheck rows are skipped", file=sys.stderr)
        torch_ok = False
    started, sections = time.strftime("%Y-%m-%d %H:%M"), []
    args.bytecode = anchors.compile_project()
    with tempfile.TemporaryDirectory() as scratch:
        for text in args.sizes:
            sizes = [int(n) for n in text.split(",")]
            case = network(sizes, args.batch)
            before = load()
            rows = {}
            rows.update(anchor_rows(case, args.repeats, torch_ok))
            rows.update(project_rows(case, args.repeats, scratch))
            rows.update(process_rows(sizes, args.batch, args.repeats, scratch))
            rows.update(same_case_rows(case, args.repeats, scratch, torch_ok))
            sections.append((sizes, rows, before, load()))
            print(f"done {text}: load {load()}", file=sys.stderr)
        before = load()
        big = [int(n) for n in args.big.split(",")] if args.big else None
        whole = (whole_rows(args.repeats, scratch, big, args.examples) if big else None, before, load())
        compiles = None
        if args.jax_cases:
            before = load()
            cmd = [sys.executable, str(ROOT / "benchmarks" / "jax_compile.py"), "--cases", str(args.jax_cases)]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), check=True).stdout
            compiles = (json.loads(out), before, load())
        jobs = None
        if args.submissions:
            before = load()
            jobs = (*jobs_rows(args.submissions, args.examples, scratch), before, load())
    text = report(machine(), started, args, sections, jobs, compiles, whole)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)


def _s(x):
    return f"{x:.3g}" if x < 10 else f"{x:.1f}"


def _cell(entry):
    if entry is None:
        return "-", "-"
    med, times, verdict = entry
    runs = f" ({len(times)} run{'s' if len(times) > 1 else ''})"
    return _s(med) + runs, str(verdict)


def _params(sizes):
    return sum(sizes[l] * (sizes[l - 1] + 1) for l in range(1, len(sizes)))


def section(sizes, rows, before, after, batch):
    name = "-".join(map(str, sizes))
    slow = rows.get("torch gradcheck fast_mode=False", {}).get("correct")
    lines = [
        f"## {name} ({_params(sizes):,} parameters), batch {batch}, float64",
        "",
        f"tanh hidden layers, identity output, sse loss. Load average before {before}, after {after}.",
        "",
        "| method | correct: median s | bug: median s | verdict (correct) | verdict (bug) | gradcheck slow / this |",
        "|---|---|---|---|---|---|",
    ]
    for method, by_subject in rows.items():
        c, b = by_subject.get("correct"), by_subject.get("bug")
        (ct, cv), (bt, bv) = _cell(c), _cell(b)
        ratio = f"{slow[0] / c[0]:.1f}x" if slow and c else "-"
        lines.append(f"| {method} | {ct} | {bt} | {cv} | {bv} | {ratio} |")
    wrong = [
        m
        for m, by in rows.items()
        if not str(by["correct"][2]).startswith("pass") or ("bug" in by and not str(by["bug"][2]).startswith("fail"))
    ]
    lines += [
        "",
        "Every method passes the correct subject and fails the planted bug"
        + (": yes." if not wrong else f", except: {', '.join(wrong)}."),
    ]
    return "\n".join(lines)


def targets(sections, jobs, whole=None):
    """The issue's targets, met or not, from the measured medians."""
    by = {"-".join(map(str, s)): rows for s, rows, _, _ in sections}
    out = []
    torch_p = by.get("64-128-64-10", {}).get(PROCESS_TORCH, {}).get("correct", (None,))[0]
    check_p = by.get("64-128-64-10", {}).get(PROCESS_CASE, {}).get("correct", (None,))[0]
    if torch_p and check_p:
        out.append(
            f"| whole process: full check at 64-128-64-10 >= 20x faster than whole-process gradcheck "
            f"fast_mode=False | {_s(check_p)} s vs {_s(torch_p)} s ({torch_p / check_p:.1f}x) "
            f"| {'met' if torch_p / check_p >= 20 else 'not met'} |"
        )
    got = whole[0] if whole else None
    if got and torch_p:
        n, (t200, _, v200) = got["cases"]
        out.append(
            f"| whole process: {n} generated cases <= 0.3x that gradcheck | {_s(t200)} s ({t200 / torch_p:.2f}x; "
            f"{v200}) | {'met' if t200 <= 0.3 * torch_p else 'not met'} |"
        )
    if got:
        big, runs, params = got["big"]
        t = statistics.median(r[0] for r in runs)
        mb = max(r[2] for r in runs)
        copies = (mb - got["floor"]) / params
        out.append(
            f"| whole process: full check at {'-'.join(map(str, big))} within 3 s | {_s(t)} s, peak {mb:.0f} MB "
            f"(parameters {params:.0f} MB; exit {runs[0][1]}) | {'met' if t <= 3 else 'not met'} |"
        )
        out.append(
            f"| its memory: peak over a tiny network's ({got['floor']:.0f} MB), in copies of the parameters "
            f"| {copies:.2f} | {'4 or fewer' if copies <= 4 else 'over 4'} (resident; allocator and BLAS buffers included) |"
        )
        steps = got.get("train_step")
        if steps:
            ts, smb = statistics.median(r[0] for r in steps), max(r[2] for r in steps)
            sc = (smb - got["floor"]) / params
            out.append(
                f"| the same with a train_step judged too (examples/correct_vectorized.py) | {_s(ts)} s, peak "
                f"{smb:.0f} MB, {sc:.2f} copies (exit {steps[0][1]}) | {'met' if ts <= 3 and sc <= 4 else 'not met'} |"
            )

    def get(net, method, subject="correct"):
        return by.get(net, {}).get(method, {}).get(subject, (None,))[0]

    slow, warm, cold = (get("64-128-64-10", m) for m in ("torch gradcheck fast_mode=False", "full", COLD))
    if slow and warm:
        out.append(
            f"| full check at 64-128-64-10 >= 20x faster than gradcheck fast_mode=False | warm {slow / warm:.0f}x, "
            f"cold {slow / cold:.1f}x | {'met' if slow / warm >= 20 else 'not met'} (warm); "
            f"{'met' if slow / cold >= 20 else 'not met'} (cold) |"
        )
    warm, cold = get("256-256-256-10", "full"), get("256-256-256-10", COLD)
    if warm:
        out.append(
            f"| full check at 256-256-256-10 <= 3 s, the check itself | warm {_s(warm)} s, cold {_s(cold)} s "
            f"| {'met' if warm <= 3 else 'not met'} (warm); {'met' if cold <= 3 else 'not met'} (cold) |"
        )
    fast, tfast = get("256-256-256-10", "fast"), get("256-256-256-10", "torch gradcheck fast_mode=True")
    if fast and tfast:
        out.append(
            f"| fast mode at 256-256-256-10 within 2x of torch fast_mode | {_s(fast)} s vs {_s(tfast)} s "
            f"({fast / tfast:.2f}x) | {'met' if fast <= 2 * tfast else 'not met'} |"
        )
    if jobs:
        (t1, c1, _), (t2, c2, _) = jobs[0][1], jobs[0][2]
        out.append(
            f"| {len(jobs[1])} submissions, --jobs 2 close to half of --jobs 1 | {_s(t1)} s vs {_s(t2)} s "
            f"({t2 / t1:.2f} of it; exit codes {c1}, {c2}) | {'met' if t2 / t1 <= 0.6 else 'not met'} (<= 0.6) |"
        )
    return "\n".join(["| target | measured | |", "|---|---|---|", *out])


def whole_section(whole, torch_p):
    got, before, after = whole
    n, (t200, times, v200) = got["cases"]
    big, runs, params = got["big"]
    name = "-".join(map(str, big))
    lines = [
        "## Whole processes: generated cases and a big network",
        "",
        f"Load average before {before}, after {after}. Every figure here is a whole command, interpreter start, "
        "imports, the sandbox child and the report included.",
        "",
        "| command | median s | runs | verdict | peak resident MB |",
        "|---|---|---|---|---|",
        f"| `python -m verifier check examples/correct_vectorized.py --examples {n}` (every activation and loss) "
        f"| {_s(t200)} | {', '.join(_s(x) for x in times)} | {v200} | - |",
        f"| `python -m verifier check benchmarks/subject_correct.py --sizes {','.join(map(str, big))} --batch 16 "
        f"--examples 1 ...` ({_params(big):,} parameters, {params:.0f} MB) | {_s(statistics.median(r[0] for r in runs))} "
        f"| {', '.join(_s(r[0]) for r in runs)} | exit {runs[0][1]} | {max(r[2] for r in runs):.0f} |",
    ]
    for what, key in (
        ("on `examples/correct_vectorized.py` (a train_step, judged too)", "train_step"),
        ("with `--mode fast`", "fast"),
    ):
        runs_of = got.get(key)
        if runs_of:
            lines.append(
                f"| the same {what} | {_s(statistics.median(r[0] for r in runs_of))} "
                f"| {', '.join(_s(r[0]) for r in runs_of)} | exit {runs_of[0][1]} "
                f"| {max(r[2] for r in runs_of):.0f} ({(max(r[2] for r in runs_of) - got['floor']) / params:.2f} copies) |"
            )
    if torch_p:
        lines += [
            "",
            f"For scale: the whole-process torch gradcheck (fast_mode=False) at 64-128-64-10 took {_s(torch_p)} s.",
        ]
    lines += [
        "",
        "Peak memory is the command's own high-water resident size (VmHWM, read every 5 ms while it runs; "
        f"the sandbox child, a process of its own, peaks lower). At {name} one float64 copy of the "
        f"parameters is {params:.0f} MB.",
    ]
    return "\n".join(lines)


def compile_section(compiles):
    d, before, after = compiles
    n, b = d["naive"], d["bucketed"]
    return "\n".join(
        [
            f"## JAX compile cost over {d['cases']} Hypothesis-varied cases",
            "",
            f"`python benchmarks/jax_compile.py --cases {d['cases']}` in a fresh process: the project's "
            f"`strategies.cases()` (depth 1-4, widths 1-6, batch 1-5, every activation and loss), "
            f"{d['distinct_signatures']} distinct (sizes, batch, activations, loss) signatures, "
            f"{d['buckets']} bucket(s). Load average before {before}, after {after}.",
            "",
            "| reverse-mode JAX gradients | programs compiled | seconds, all cases |",
            "|---|---|---|",
            f"| naive: jax.jit per shape and names | {n['compiles']} | {_s(n['seconds'])} |",
            f"| bucketed (reference_impls/jax_ref.py) | {b['compiles']} | {_s(b['seconds'])} |",
            "",
            f"The two agree to 1e-6 of each tensor's largest entry on {d['agree']} of {d['cases']} cases (the rest: "
            "saturated sigmoid outputs, where the naive forward, without stable forms, loses digits).",
        ]
    )


def report(info, started, args, sections, jobs, compiles=None, whole=None):
    lines = [
        "# Benchmarks: this project against torch.autograd.gradcheck and a numpy loop",
        "",
        "Written by `python benchmarks/run.py` (see its docstring); re-run it to refresh every number.",
        f"Run {started}; repeats {args.repeats} (a method whose first run takes over {LONG:.0f} s runs once); "
        "times are medians of wall-clock seconds (time.perf_counter). BLAS and torch use one thread. " + args.bytecode,
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        "## Targets",
        "",
        targets(sections, jobs, whole),
        "",
    ]
    for sizes, rows, before, after in sections:
        lines += [section(sizes, rows, before, after, args.batch), ""]
    if whole and whole[0]:
        by = {"-".join(map(str, s)): rows for s, rows, _, _ in sections}
        torch_p = by.get("64-128-64-10", {}).get(PROCESS_TORCH, {}).get("correct", (None,))[0]
        lines += [whole_section(whole, torch_p), ""]
    if jobs:
        res, names, before, after = jobs
        lines += [
            f"## A class of {len(names)} submissions",
            "",
            f"`python -m verifier check s01_... s{len(names):02d}_... --jobs N --examples {args.examples} "
            f"--output DIR` (full mode), copies of examples/ ({', '.join(sorted(set(n[4:] for n in names)))}). "
            f"Load average before {before}, after {after}.",
            "",
            "| --jobs | median seconds | runs (order: 1, 2, 2, 1) | exit code |",
            "|---|---|---|---|",
            *[f"| {j} | {_s(t)} | {', '.join(_s(x) for x in runs)} | {c} |" for j, (t, c, runs) in sorted(res.items())],
            "",
        ]
    if compiles:
        lines += [compile_section(compiles), ""]
    lines += [NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## What the rows are

- **torch gradcheck**: `torch.autograd.gradcheck(J, [W1, b1, ...], fast_mode=...)` on a torch-native
  MLP; the correct subject is torch's autograd, the planted bug a custom autograd Function for
  the loss whose backward forgets the 2. Slow mode builds the numerical Jacobian entry by entry.
- **numpy per-entry loop**: CS231n's `eval_numerical_gradient` (two forwards per entry, h = 1e-5)
  against the subject's gradient; verdict from the largest relative error
  |a - n| / max(1e-8, |a| + |n|) against 1e-4, the loosest line of CS231n's scale. One threshold
  for every entry cannot hold on a big network: the difference's rounding, about
  eps |J| / h, is fixed, so the smallest gradient entries get large relative errors and a
  correct gradient can be flagged (the error model of this project gives each entry its own
  tolerance instead).
- **torch gradcheck threads**: one (`torch.set_num_threads(1)`). With torch's default two
  threads on this shared 2-core machine, slow mode at 64-128-64-10 once took 221 s against
  9.7 s with one thread (load average 11 at the time): the threads only wait for each other.
  When gradcheck fails in fast mode it recomputes the slow-mode Jacobian for its message,
  which is why its bug column is slow.
- **full** and **full, cold**: `check_case(sandbox, info, case, "full")` with the subject's sandbox
  child already running (one child serves every case of a run): what `check --mode full` does
  for each case, i.e. the check itself: the user's call, full mode's references on every entry
  (on these networks the delta rule and the structure-aware complex step with one tangent per
  unit, reference_impls/complex_step.py), the per-entry error model and the judgement. Cold is
  the first check of the process: nothing is compiled, only first-use costs remain.
- **full with JAX as a third reference**: the same with JAX reverse mode added, as full mode
  does on networks of JAX's smallest shape bucket (every generated case). Its cold row is the
  first of a shape bucket in a process: JAX compiles the bucket's program. That compile is why
  bigger networks are not given JAX: it alone costs more than a twentieth of gradcheck's time.
- **fast**: `check_case(..., "fast")`: each tensor along 3 random directions against the
  complex-step directional derivative, entries only for the tensors that fail (verifier/judge/fast.py).
- **run_check(case=...)**: the same check plus starting the sandbox child and, for the bug, the
  diagnosis of the failure.
- **process**: the whole command, interpreter start and imports included (a default check
  imports no JAX); for the bug, also the shrinking to a minimal case and its diagnosis.
  `check --case FILE` and `torch_process.py FILE` read the same case file: the one comparison
  here of two whole processes on the same values. Every other torch row is gradcheck's call
  alone, in this process, torch already imported.
"""


if __name__ == "__main__":
    main()
