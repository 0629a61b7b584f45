"""`check A.py B.py ... --jobs N`: a whole class of submissions, one report each and a summary.

Each implementation is one job, `run_check` as for a single one, with its own sandbox child.
With --jobs N > 1 the jobs run in a pool of N worker processes started by spawn (never fork: the
parent may already hold JAX's threads). Not forkserver: it costs the same here, but its workers
are the server's children, so the command's CPU time as the OS accounts it (time, CI job
statistics) left them out. With
--jobs 1 they run one after the other in this process, and the JAX programs compiled for the
first implementation serve the rest.

An implementation the harness could not check (not importable, no `gradients`, references
disagreeing, a crashed worker) gets an "error" result of its own; it never stops the others.
Where the reports go, and the exit code, is the command line's (verifier/cli/check.py).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from ..errors import SpecError, VerifierError, harness_bug
from ..records import CheckResult, Failure, RunConfig
from ..safe_io import clean_text
from .check import run_check

__all__ = ["error_result", "run_batch", "run_one", "shard", "worst_verdict"]

VERDICT_ORDER = ("pass", "fail", "error")  # worst last


def run_batch(impls, config: RunConfig, *, case=None, jobs=1, on_done=None) -> list[CheckResult]:
    """CheckResults of `impls` (in that order), `jobs` at a time, each as run_check's with this
    `config` (and `case`). `on_done(done, total)` is called as each implementation finishes."""
    impls = [str(i) for i in impls]
    results: list[CheckResult | None] = [None] * len(impls)
    done = 0
    if jobs <= 1 or len(impls) <= 1:
        for k, impl in enumerate(impls):
            results[k] = _job(impl, config, case)
            done += 1
            if on_done:
                on_done(done, len(impls))
        return results  # type: ignore[return-value]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(impls)), mp_context=ctx) as pool:
        futures = {pool.submit(_job, impl, config, case): k for k, impl in enumerate(impls)}
        for future in as_completed(futures):
            k = futures[future]
            try:
                results[k] = future.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                results[k] = error_result(impls[k], f"the worker process checking it died: {exc}", 0.0, config.seed)
            done += 1
            if on_done:
                on_done(done, len(impls))
    return results  # type: ignore[return-value]


def run_one(impl, config: RunConfig, case=None) -> CheckResult:
    """One implementation's CheckResult exactly as a class run makes it: a harness error (not
    importable, no `gradients`, a harness bug) is an "error" result, never raised. What each
    job of --jobs and each task of --scheduler runs."""
    return _job(str(impl), config, case)


def shard(impls, index: int, count: int) -> list[str]:
    """The `index`-th (1-based) of `count` slices of `impls`: those whose name hashes there.

    The name is the path as given, normalised (`./a/x.py` is `a/x.py`); the same class listed in
    any order, on any machine, splits the same way, and a submission added later moves no other."""
    if not 1 <= index <= count:
        raise SpecError(f"shard {index}/{count}: give I/N with 1 <= I <= N, e.g. --shard 1/4")
    out = []
    for impl in impls:
        digest = hashlib.sha256(os.path.normpath(str(impl)).encode("utf-8")).digest()
        if int.from_bytes(digest[:8], "big") % count == index - 1:
            out.append(str(impl))
    return out


def _job(impl, config, case=None):
    """One implementation's CheckResult; a harness error becomes an "error" result, never raised."""
    start = time.perf_counter()
    try:
        return run_check(impl, config, case=case)
    except VerifierError as exc:
        return error_result(impl, str(exc), time.perf_counter() - start, config.seed)
    except Exception as exc:  # a harness bug on one implementation must not stop the class
        return error_result(impl, harness_bug(exc), time.perf_counter() - start, config.seed)


def error_result(impl, message, seconds, seed):
    return CheckResult(
        verdict="error",
        seed=seed,
        examples=0,
        implementation=impl,
        references=(),
        failures=(Failure(kind="error", detail=clean_text(message)),),  # may quote the code's import error
        seconds=seconds,
    )


def worst_verdict(results) -> str:
    """The worst verdict of a class: error > fail > pass (pass for none)."""
    return max(
        (r.verdict for r in results), key=lambda v: VERDICT_ORDER.index(v) if v in VERDICT_ORDER else 2, default="pass"
    )
