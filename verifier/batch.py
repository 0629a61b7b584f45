"""`check A.py B.py ... --jobs N`: a whole class of submissions, one report each and a summary.

Each implementation is one job, `run_check` as for a single one, with its own sandbox child.
With --jobs N > 1 the jobs run in a pool of N worker processes started by spawn (never fork: the
parent may already hold JAX's threads). Not forkserver: it costs the same here, but its workers
are the server's children, so the command's CPU time as the OS accounts it (time, CI job
statistics) left them out. With
--jobs 1 they run one after the other in this process, and the JAX programs compiled for the
first implementation serve the rest.

Output: one report per implementation, in the order given. With --output DIR, one file each
in DIR, named after the implementation (`bug_sign_flip.py` -> `bug_sign_flip.txt`, `.md`,
`.json`, `.xml`, `.html`), and the summary on standard output; without, the reports one after
another on standard output, then the summary (for json, one document holding both). The
summary has one row per implementation: verdict, cases, failures, the first failure, seconds.

Exit code: the worst of the implementations' (2 > 1 > 0). An implementation the harness could
not check (not importable, no `gradients`, references disagreeing, a crashed worker) gets an
"error" report of its own and exit 2; it never stops the others.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from . import cli, report
from .errors import SpecError, VerifierError
from .records import CheckResult, Failure

__all__ = ["run_batch", "summary_rows", "cmd_batch", "SUMMARY_HEADERS"]

SUMMARY_HEADERS = ["impl", "verdict", "cases", "failures", "first failure", "seconds"]
EXTENSIONS = {"text": "txt", "markdown": "md", "json": "json", "junit": "xml", "html": "html"}
EXIT = {"pass": cli.EXIT_PASS, "fail": cli.EXIT_FAIL}


def run_batch(impls, *, jobs=1, on_done=None, **check_kwargs):
    """CheckResults of `impls` (in that order), `jobs` at a time; keyword arguments as run_check's
    (a `progress` callback is dropped: it cannot follow several processes). `on_done(done, total)`
    is called as each implementation finishes."""
    impls = [str(i) for i in impls]
    check_kwargs.pop("progress", None)
    progress = on_done
    results = [None] * len(impls)
    done = 0
    if jobs <= 1 or len(impls) <= 1:
        for k, impl in enumerate(impls):
            results[k] = _job(impl, check_kwargs)
            done += 1
            if progress:
                progress(done, len(impls))
        return results
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(impls)), mp_context=ctx) as pool:
        futures = {pool.submit(_job, impl, check_kwargs): k for k, impl in enumerate(impls)}
        for future in as_completed(futures):
            k = futures[future]
            try:
                results[k] = future.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                results[k] = _error(impls[k], f"the worker process checking it died: {exc}", 0.0)
            done += 1
            if progress:
                progress(done, len(impls))
    return results


def _job(impl, kwargs):
    """One implementation's CheckResult; a harness error becomes an "error" result, never raised."""
    from .check import run_check

    start = time.perf_counter()
    try:
        return run_check(impl, **kwargs)
    except VerifierError as exc:
        return _error(impl, str(exc), time.perf_counter() - start)
    except Exception as exc:  # a harness bug on one implementation must not stop the class
        return _error(impl, f"internal error: {type(exc).__name__}: {exc}", time.perf_counter() - start)


def _error(impl, message, seconds):
    return CheckResult(verdict="error", seed=0, examples=0, implementation=impl, references=(),
                       failures=(Failure(kind="error", detail=message),), seconds=seconds)


def exit_code(results):
    """The worst exit code: 2 (harness error) > 1 (failed) > 0 (passed)."""
    return max((EXIT.get(r.verdict, cli.EXIT_ERROR) for r in results), default=cli.EXIT_PASS)


def _first_failure(r):
    if not r.failures:
        return ""
    f = r.failures[0]
    where = f" layer {f.layer} {f.param}" if f.layer is not None else ""
    label = f" ({f.diagnosis})" if f.diagnosis else ""
    text = f"{f.kind}{where}{label}"
    if f.kind == "error":
        text = f"error: {f.detail}"
    return text if len(text) <= 70 else text[:67] + "..."


def summary_rows(results):
    """One row per result, in SUMMARY_HEADERS order."""
    return [[r.implementation, r.verdict, r.examples, len(r.failures), _first_failure(r), f"{r.seconds:.1f}"]
            for r in results]


def output_names(impls, fmt):
    """A distinct file name per implementation: its stem plus the format's extension."""
    names, seen = [], set()
    for impl in impls:
        stem = os.path.splitext(os.path.basename(str(impl).rstrip("/")))[0] or "impl"
        name, n = f"{stem}.{EXTENSIONS[fmt]}", 1
        while name in seen:
            n += 1
            name = f"{stem}-{n}.{EXTENSIONS[fmt]}"
        seen.add(name)
        names.append(name)
    return names


def write_reports(results, fmt, output):
    """The reports and the summary, where DESIGN section 4 and the module docstring say."""
    to_stdout = output in (None, "-")
    _check_output(fmt, output)
    rows = summary_rows(results)
    if to_stdout and fmt == "json":
        doc = {"verdict": _worst_verdict(results), "summary": [dict(zip(SUMMARY_HEADERS, r)) for r in rows],
               "reports": [json.loads(cli.render(r, "json")) for r in results]}
        cli.write_output(json.dumps(doc, indent=2) + "\n", None)
        return
    if to_stdout:
        rule = "\n" + "=" * 72 + "\n\n"
        cli.write_output(rule.join(cli.render(r, fmt) for r in results) + rule + _summary(rows, fmt), None)
        return
    os.makedirs(output, exist_ok=True)
    for r, name in zip(results, output_names([r.implementation for r in results], fmt)):
        cli.write_output(cli.render(r, fmt), os.path.join(output, name))
    if fmt == "json":
        cli.write_output(json.dumps([dict(zip(SUMMARY_HEADERS, r)) for r in rows], indent=2) + "\n", None)
    else:
        cli.write_output(_summary(rows, fmt), None)


def _check_output(fmt, output):
    """Refuse, before any check runs, an output several reports cannot go to."""
    if output in (None, "-"):
        if fmt in ("junit", "html"):
            raise SpecError(f"{fmt} reports of several implementations need a directory: add --output DIR")
    elif os.path.exists(output) and not os.path.isdir(output):
        raise SpecError(f"--output {output} is a file; with several implementations give a directory")


def _worst_verdict(results):
    return {cli.EXIT_PASS: "pass", cli.EXIT_FAIL: "fail"}.get(exit_code(results), "error")


def _summary(rows, fmt):
    table_fmt = "github" if fmt == "markdown" else "simple"
    return f"Summary: {len(rows)} implementations\n\n" + report.table(rows, SUMMARY_HEADERS, table_fmt) + "\n"


def cmd_batch(args, kwargs):
    """The `check` command with several IMPLs (check_cli dispatches here)."""
    _check_output(args.format, args.output)
    progress = cli.Progress(f"check ({args.jobs} job{'s' if args.jobs > 1 else ''})", args.quiet)
    results = run_batch(args.impl, jobs=args.jobs, on_done=progress, **kwargs)
    write_reports(results, args.format, args.output)
    return exit_code(results)
