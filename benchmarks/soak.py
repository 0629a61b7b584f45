"""Soak: `crosscheck` over many consecutive seeds, every reference pair's disagreements counted.

    python benchmarks/soak.py [--start S] [--seeds 20] [--examples 2000] [--jobs 2]

Runs `verifier.run.crosscheck.run_crosscheck` (the engine behind `backprop-verify crosscheck`,
without shrinking: a soak counts, it does not minimise) on seeds S, S+1, ..., S+seeds-1, in
`--jobs` processes. Without `--start` the run draws S itself from os.urandom and prints it, so
that every soak explores seeds nobody has tuned the error model on; `--start S` replays one.
Reports, per seed and in total, the disagreements of every pair of references, plus the other
rows a cross-check counts (loss_mismatch, kink_mismatch, a reference raising), and writes
reports/soak.md (or --output): the command line, the start seed, the per-seed rows, the
total, the machine's load before and after, the wall time. Exit 0 when every count is 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from verifier.judge.references import REFERENCES  # noqa: E402
from verifier.run.crosscheck import COUNTED, run_crosscheck  # noqa: E402

SHORT = {"delta_rule": "DR", "jax_reverse": "JR", "jax_forward": "JF", "central_diff": "CD", "complex_step": "CS"}
SHOWN_FAILURES = 5  # per seed, in the report, when a seed disagrees


def _load():
    return os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3


def soak_seed(seed: int, examples: int) -> dict:
    """One seed's cross-check, as plain data (it crosses a process boundary)."""
    r = run_crosscheck(examples=examples, seed=seed, shrink=False)
    return {
        "seed": seed,
        "examples": r.examples,
        "verdict": r.verdict,
        "disagreements": r.disagreements,
        "pairs": {(p.a, p.b): (p.disagreements, p.compared, p.excused, p.max_abs, p.max_rel) for p in r.pairs},
        "other": r.disagreements - sum(p.disagreements for p in r.pairs),  # the COUNTED rows
        "seconds": r.seconds,
        "failures": [f"{f.kind} {f.subject}: {f.detail} (case {f.case})" for f in r.failures[:SHOWN_FAILURES]],
    }


def _label(pair):
    return f"{SHORT.get(pair[0], pair[0])}/{SHORT.get(pair[1], pair[1])}"


def render(args, command, start, rows, pairs, load_before, load_after, wall):
    """reports/soak.md from the per-seed results (sorted by seed)."""
    total = {p: sum(r["pairs"].get(p, (0,))[0] for r in rows) for p in pairs}
    other = sum(r["other"] for r in rows)
    grand = sum(r["disagreements"] for r in rows)
    cases = sum(r["examples"] for r in rows)
    busy = max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
    lines = [
        "# Soak: crosscheck over consecutive seeds",
        "",
        f"Command: `{command}`  ",
        f"Start seed: {start} ({'given by --start' if args.start is not None else 'drawn by the run from os.urandom'}); "
        f"seeds {start}..{start + args.seeds - 1}, {args.examples} cases each, {args.jobs} processes.  ",
        f"Replay: `python benchmarks/soak.py --start {start} --seeds {args.seeds} --examples {args.examples} "
        f"--jobs {args.jobs}`  ",
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}.  ",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.2f}' for x in load_after)}"
        + (" (above the core count: other jobs shared the machine, times are inflated).  " if busy else ".  "),
        f"Wall time: {wall:.0f} s for {cases} cases ({sum(r['seconds'] for r in rows):.0f} s of cross-checking "
        "summed over the seeds).",
        "",
        f"**Total: {grand} disagreements** over {len(rows)} seeds and {cases} cases "
        f"({sum(total.values())} in reference pairs, {other} other rows).",
        "",
        "Each pair's column counts the tensors (one W or b of one case) where the two references "
        "disagree beyond the error model's tolerance plus each one's own estimate (kink entries "
        f"excused); `other` counts the other rows a cross-check counts ({', '.join(COUNTED)}). "
        "`s`: the seed's cross-check time (the first seed of each process also compiles JAX's programs). "
        "References: " + ", ".join(f"{SHORT.get(n, n)} = {n}" for n in REFERENCES) + ".",
        "",
        "| seed | cases | " + " | ".join(_label(p) for p in pairs) + " | other | total | s |",
        "|---" * (len(pairs) + 5) + "|",
    ]
    for r in rows:
        cells = [str(r["pairs"].get(p, (0,))[0]) for p in pairs]
        lines.append(
            f"| {r['seed']} | {r['examples']} | "
            + " | ".join(cells)
            + f" | {r['other']} | {r['disagreements']} | {r['seconds']:.0f} |"
        )
    lines.append(
        f"| **total** | {cases} | "
        + " | ".join(f"**{total[p]}**" for p in pairs)
        + f" | **{other}** | **{grand}** | {sum(r['seconds'] for r in rows):.0f} |"
    )
    lines += [
        "",
        "Per pair over the whole soak: entries compared, entries excused as kinks, the largest "
        "absolute and relative difference seen.",
        "",
        "| pair | disagreements | entries compared | excused (kinks) | max abs err | max rel err |",
        "|---|---|---|---|---|---|",
    ]
    for p in pairs:
        stats = [r["pairs"][p] for r in rows if p in r["pairs"]]
        lines.append(
            f"| {p[0]} / {p[1]} | {total[p]} | {sum(s[1] for s in stats)} | {sum(s[2] for s in stats)} | "
            f"{max((s[3] for s in stats), default=0):.3g} | {max((s[4] for s in stats), default=0):.3g} |"
        )
    shown = [(r["seed"], f) for r in rows for f in r["failures"]]
    if shown:
        lines += ["", "First failure rows of the seeds that disagreed:", ""]
        lines += [f"- seed {seed}: {f}" for seed, f in shown]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=int, default=None, help="first seed (default: drawn from os.urandom)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--output", default=str(ROOT / "reports" / "soak.md"), help="'-' for none")
    args = ap.parse_args(argv)
    start = args.start if args.start is not None else int.from_bytes(os.urandom(3), "big")
    command = "python benchmarks/soak.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    print(f"soak: start seed {start}, seeds {start}..{start + args.seeds - 1}, {args.examples} cases each", flush=True)
    load_before, t0 = _load(), time.perf_counter()
    rows = []
    context = multiprocessing.get_context("spawn")  # JAX does not survive a fork of a process using it
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = [pool.submit(soak_seed, start + i, args.examples) for i in range(args.seeds)]
        for fut in as_completed(futures):
            r = fut.result()
            rows.append(r)
            print(
                f"  seed {r['seed']}: {r['disagreements']} disagreements, {r['examples']} cases, "
                f"{r['seconds']:.0f} s ({len(rows)}/{args.seeds})",
                file=sys.stderr,
                flush=True,
            )
    wall, load_after = time.perf_counter() - t0, _load()
    rows.sort(key=lambda r: r["seed"])
    pairs = list(rows[0]["pairs"]) if rows else []
    text = render(args, command, start, rows, pairs, load_before, load_after, wall)
    print(text)
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {os.path.relpath(args.output, ROOT)}", file=sys.stderr)
    return 0 if all(r["disagreements"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
