"""`backprop-verify check IMPL...`: one implementation, or a whole class with --jobs.

With several IMPLs: one report per implementation, in the order given. With --output DIR, one
file each in DIR, named after the implementation (`bug_sign_flip.py` -> `bug_sign_flip.txt`,
`.md`, `.json`, `.xml`, `.html`), and the summary on standard output; without, the reports one
after another on standard output, then the summary (for json, one document holding both).
Exit code: the worst of the implementations' (2 > 1 > 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import casefile, strategies
from ..errors import SpecError
from ..records import RunConfig
from ..report import FORMATS, render
from ..report.common import SUMMARY_HEADERS, summary_rows, summary_text, to_json
from ..run.batch import run_batch, worst_verdict
from ..run.check import MODES, run_check
from .common import DEFAULT, EXIT_PASS, Progress, add_cases, add_output, exit_code, positive, write_output

HELP = "check an implementation's gradients"


def names(text) -> list[str]:
    """Names given as several words, commas or both."""
    return [n for part in text for n in part.replace(",", " ").split() if n]


def sizes(text: str) -> list[int]:
    try:
        out = [int(n) for n in text.replace(",", " ").replace("-", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give layer sizes like 4,8,3") from None
    if len(out) < 2 or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least two sizes, each >= 1, like 4,8,3")
    return out


def seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (s > 0 and s != float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: give a number of seconds > 0")
    return s


def add_network_options(p: argparse.ArgumentParser, several: bool = False) -> None:
    """The implementation and the options that say which networks it is checked on (check, gate)."""
    p.add_argument(
        "impl",
        metavar="IMPL",
        nargs="+" if several else None,
        help="a .py file or an importable module defining gradients(params, X, T, spec)",
    )
    p.add_argument("--sizes", type=sizes, help="pin the layer sizes n_0..n_L, e.g. 4,8,3")
    p.add_argument(
        "--activations", nargs="+", help="activation names to draw from; with --sizes, one per layer pins them"
    )
    p.add_argument("--loss", help=f"pin the loss ({', '.join(strategies.ALL_LOSSES)})")
    p.add_argument("--batch", type=positive, help="pin the batch size")
    p.add_argument("--mode", choices=MODES, default=DEFAULT.mode, help="full: every entry (default)")
    p.add_argument("--case", help="rerun exactly this case file (the replay of a failure)")
    p.add_argument(
        "--jax",
        action="store_true",
        help="full mode: JAX reverse mode, with a forward of its own, as a third reference on small networks "
        "(about a second more: it is imported while the run starts)",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT.timeout,
        help="seconds allowed per call of the implementation (default %(default)g)",
    )
    p.add_argument(
        "--budget",
        type=seconds,
        default=DEFAULT.budget,
        help="seconds for the whole run: when spent it ends with what it has, never a pass (default %(default)g)",
    )
    p.add_argument(
        "--cases-dir", default=".backprop-verify", help="where minimal failing cases are saved (default %(default)s)"
    )


def add_parser(sub) -> None:
    p = sub.add_parser("check", help=HELP)
    add_network_options(p, several=True)
    add_cases(p)
    add_output(p)
    p.add_argument(
        "--jobs",
        type=positive,
        default=1,
        help="with several IMPLs: how many to check at once, in separate processes (default 1)",
    )


def config_from(args) -> tuple[RunConfig, object]:
    """The run configuration and the replayed case (or None) from the parsed command line."""
    acts = names(args.activations) if args.activations else None
    case = None
    if args.case:
        if any(v is not None for v in (args.sizes, args.activations, args.loss, args.batch)):
            raise SpecError("--case pins everything; drop --sizes, --activations, --loss and --batch")
        case = casefile.load(args.case)
    pinned = None
    if args.sizes is not None and acts and len(acts) == len(args.sizes) - 1 and len(args.sizes) > 2:
        pinned, acts = tuple(acts), None
    config = RunConfig(
        examples=args.examples,
        seed=args.seed,
        mode=args.mode,
        timeout=args.timeout,
        budget=args.budget,
        sizes=tuple(args.sizes) if args.sizes is not None else None,
        activations=tuple(acts) if acts else None,
        layer_activations=pinned,
        loss=args.loss,
        batch=args.batch,
        cases_dir=args.cases_dir,
        jax=bool(getattr(args, "jax", False)),
    )
    return config, case


def run(args) -> int:
    config, case = config_from(args)
    if len(args.impl) > 1:  # a whole class of submissions
        return _class(args, config, case)
    result = run_check(args.impl[0], config, case=case, progress=Progress("check", args.quiet))
    write_output(render(result, args.format), args.output)
    verbose_notes(args, result)
    return exit_code([result])


def verbose_notes(args, result, notes=(), verbose=()) -> None:
    """Standard error: nothing with --quiet; `notes`; with --verbose, timing, precision and
    the `verbose` lines."""
    if args.quiet:
        return
    lines = list(notes)
    if args.verbose:
        per_case = 1000 * result.seconds / max(result.examples, 1)
        lines.append(
            f"{result.examples} cases in {result.seconds:.2f} s ({per_case:.0f} ms per case), seed "
            f"{result.seed}, judged to {result.dtype or 'no'} accuracy"
        )
        lines += list(verbose)
    for line in lines:
        sys.stderr.write(f"backprop-verify: {line}\n")


# --- a class of submissions -----------------------------------------------------------------


def output_names(impls, fmt: str) -> list[str]:
    """A distinct file name per implementation: its stem plus the format's extension."""
    ext = FORMATS[fmt].extension
    out, seen = [], set()
    for impl in impls:
        stem = os.path.splitext(os.path.basename(str(impl).rstrip("/")))[0] or "impl"
        name, n = f"{stem}.{ext}", 1
        while name in seen:
            n += 1
            name = f"{stem}-{n}.{ext}"
        seen.add(name)
        out.append(name)
    return out


def check_output(fmt: str, output: str | None) -> None:
    """Refuse, before any check runs, an output several reports cannot go to."""
    if output in (None, "-"):
        if fmt in ("junit", "html"):
            raise SpecError(f"{fmt} reports of several implementations need a directory: add --output DIR")
    elif os.path.exists(output) and not os.path.isdir(output):
        raise SpecError(f"--output {output} is a file; with several implementations give a directory")


def write_reports(results, fmt: str, output: str | None) -> None:
    """The reports and the summary, where the module docstring says."""
    check_output(fmt, output)
    rows = summary_rows(results)
    summary_fmt = "github" if fmt == "markdown" else "simple"
    if output in (None, "-"):
        if fmt == "json":
            doc = {
                "verdict": worst_verdict(results),
                "summary": [dict(zip(SUMMARY_HEADERS, r)) for r in rows],
                "reports": [to_json(r) for r in results],
            }
            write_output(json.dumps(doc, indent=2) + "\n", None)
            return
        rule = "\n" + "=" * 72 + "\n\n"
        write_output(rule.join(render(r, fmt) for r in results) + rule + summary_text(results, summary_fmt), None)
        return
    os.makedirs(output, exist_ok=True)
    for r, name in zip(results, output_names([r.implementation for r in results], fmt)):
        write_output(render(r, fmt), os.path.join(output, name))
    if fmt == "json":
        write_output(json.dumps([dict(zip(SUMMARY_HEADERS, r)) for r in rows], indent=2) + "\n", None)
    else:
        write_output(summary_text(results, summary_fmt), None)


def _class(args, config: RunConfig, case) -> int:
    check_output(args.format, args.output)
    progress = Progress(f"check ({args.jobs} job{'s' if args.jobs > 1 else ''})", args.quiet)
    results = run_batch(args.impl, config, case=case, jobs=args.jobs, on_done=progress)
    write_reports(results, args.format, args.output)
    return exit_code(results) if results else EXIT_PASS
