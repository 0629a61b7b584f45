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
import shutil
import sys

from .. import casefile, safe_io, specs
from ..errors import SpecError
from ..records import RunConfig
from ..report import FORMATS, render
from ..run.check import MODES
from ..run.contract import AGAINST, run_file
from . import grading
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


def interpreter(text: str) -> str:
    """An executable Python interpreter, by path or by name on PATH."""
    found = shutil.which(text)
    if not found:
        raise argparse.ArgumentTypeError(
            f"{text!r}: no executable there; give the path of a python, e.g. venv/bin/python"
        )
    return os.path.abspath(found)


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
    p.add_argument(
        "--loss",
        metavar="CONVENTION",
        help=f"pin the loss: a preset ({', '.join(specs.ALL_LOSSES)}) or a kind and its choices, "
        "e.g. squared,factor=0.5,over_batch=mean,l2=1e-4",
    )
    p.add_argument(
        "--targets",
        choices=specs.TARGETS,
        help="what T holds: soft rows (default), one_hot rows, or labels (class indices of shape (B,), for ce)",
    )
    p.add_argument("--batch", type=positive, help="pin the batch size")
    p.add_argument(
        "--python",
        type=interpreter,
        metavar="PATH",
        help="run the checked code under this interpreter (your environment, with your libraries; it needs numpy)",
    )
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
    p.add_argument(
        "--require-isolation",
        action="store_true",
        help="refuse to run the code (exit 2) unless it gets full isolation: its own pid, net and mount "
        "namespaces, private /tmp and /dev/shm, Landlock, none of the harness's privileges",
    )


def add_parser(sub) -> None:
    p = sub.add_parser("check", help=HELP)
    add_network_options(p, several=True)
    add_cases(p)
    add_output(p)
    p.add_argument(
        "--against",
        choices=AGAINST,
        default=DEFAULT.against,
        help="networks: judge against the model's references (default), the file's own loss(), or both",
    )
    p.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="layers files: check only this layer (NAME_forward/NAME_backward or NAME_loss); repeatable",
    )
    p.add_argument(
        "--jobs",
        type=positive,
        default=1,
        help="with several IMPLs: how many to check at once, in separate processes (default 1)",
    )
    grading.add_grading_options(p)
    grading.add_class_options(p)


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
        loss=specs.loss_name(args.loss) if args.loss is not None else None,
        targets=args.targets,
        python=getattr(args, "python", None),
        batch=args.batch,
        cases_dir=args.cases_dir,
        against=getattr(args, "against", DEFAULT.against),
        layers=tuple(names(args.layer)) if getattr(args, "layer", None) else None,
        require_isolation=bool(getattr(args, "require_isolation", False)),
        jax=bool(getattr(args, "jax", False)),
    )
    return config, case


def run(args) -> int:
    config, case = config_from(args)
    if len(args.impl) == 1 and not (args.shard or args.scheduler):
        safe_io.refuse_planted(args.output, what="report")  # now, not after the whole run
    rubric = grading.rubric_of(args)
    if len(args.impl) > 1 or args.shard or args.scheduler:  # a whole class of submissions
        return _class(args, config, case, rubric)
    if args.format in grading.GRADER_FORMATS:  # a grader wants its file even when the harness fails
        from ..run.batch import run_one

        result = run_one(args.impl[0], config, case)
    else:
        result = run_file(args.impl[0], config, case=case, progress=Progress("check", args.quiet))
    result = grading.graded([result], args, rubric)[0]
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
        stem = safe_io.file_stem(impl)  # a student's file name: no control character reaches a file name
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
        if fmt in ("junit", "html", *grading.GRADER_FORMATS):
            raise SpecError(f"{fmt} reports of several implementations need a directory: add --output DIR")
    elif os.path.isfile(output) and not os.path.islink(output):
        raise SpecError(f"--output {output} is a file; with several implementations give a directory")
    else:  # a link, or a directory someone else made (the checked code, first?): refused now
        safe_io.output_dir(output, what="--output directory", create=False)


def write_reports(results, fmt: str, output: str | None, shard_doc=None) -> None:
    """The reports and the summary, where the module docstring says; a shard's `shard_doc`
    (run/merge.py's manifest) goes beside the reports, or into the one JSON document."""
    from ..report.common import summary_headers, summary_rows, summary_text, to_json
    from ..run.batch import worst_verdict
    from ..run.merge import MANIFEST

    check_output(fmt, output)
    rows, headers = summary_rows(results), summary_headers(results)
    summary_fmt = "github" if fmt == "markdown" else "simple"
    if output in (None, "-"):
        if fmt == "json":
            doc = {
                "verdict": worst_verdict(results),
                "summary": [dict(zip(headers, r)) for r in rows],
                "reports": [to_json(r) for r in results],
                **(shard_doc or {}),
            }
            write_output(json.dumps(doc, indent=2) + "\n", None)
            return
        rule = "\n" + "=" * 72 + "\n\n"
        write_output(rule.join(render(r, fmt) for r in results) + rule + summary_text(results, summary_fmt), None)
        return
    safe_io.output_dir(output, what="--output directory")
    if shard_doc:
        where = os.path.join(output, MANIFEST.format(**shard_doc["shard"]))
        write_output(json.dumps(shard_doc, indent=2) + "\n", where, own_dir=True)
    for r, name in zip(results, output_names([r.implementation for r in results], fmt)):
        write_output(render(r, fmt), os.path.join(output, name), own_dir=True)
    if fmt == "json":
        write_output(json.dumps([dict(zip(headers, r)) for r in rows], indent=2) + "\n", None)
    else:
        write_output(summary_text(results, summary_fmt), None)


def _class(args, config: RunConfig, case, rubric=None) -> int:
    from ..run.batch import run_batch, shard
    from ..run.merge import manifest

    check_output(args.format, args.output)
    impls, shard_doc = list(args.impl), None
    if args.shard:
        impls = shard(impls, *args.shard)
        shard_doc = manifest(args.shard[0], args.shard[1], impls)
    if args.scheduler:
        from ..run.cluster import run_on_cluster  # distributed only when a cluster is asked for

        progress = Progress(f"check (cluster {args.scheduler})", args.quiet)
        results = run_on_cluster(impls, config, args.scheduler, case=case, on_done=progress)
    else:
        progress = Progress(f"check ({args.jobs} job{'s' if args.jobs > 1 else ''})", args.quiet)
        results = run_batch(impls, config, case=case, jobs=args.jobs, on_done=progress)
    results = grading.graded(results, args, rubric)
    write_reports(results, args.format, args.output, shard_doc)
    return exit_code(results) if results else EXIT_PASS
