"""`check A.py B.py ... --jobs N`: a whole class of submissions, one report each and a summary.

Each implementation is one job, `run_file` as for a single one, with its own sandbox child.
With --jobs N > 1 the jobs run in a pool of N worker processes started by spawn (never fork: the
parent may already hold JAX's threads). Not forkserver: it costs the same here, but its workers
are the server's children, so the command's CPU time as the OS accounts it (time, CI job
statistics) left them out. With
--jobs 1 they run one after the other in this process, and the JAX programs compiled for the
first implementation serve the rest.

Each submission saves its minimal cases under a name of its own (`case_stem`: its file's stem
and a digest of its path), so two submissions with the same file name in different directories
never share a case file, and each replay command names its own.

An implementation the harness could not check (not importable, no `gradients`, references
disagreeing, a crashed worker) gets an "error" result of its own; it never stops the others.
A worker that dies breaks the whole pool, and every submission it had not finished with it:
those are run again, each alone in a fresh worker, so only a submission whose own worker dies
there gets the "error" row.
The workers make their sandboxes' work directories in one scratch directory of the run's,
which this process removes when the pool is done: a worker that dies (and the classmates' workers
a broken pool takes down with it) cannot clean up after its children, and would otherwise leave
their work directories in the temp dir.
Where the reports go, and the exit code, is the command line's (verifier/cli/check.py).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import SpecError, VerifierError, harness_bug
from ..records import CheckResult, Failure, RunConfig
from ..safe_io import clean_text, file_stem, shown_name
from .contract import run_file

__all__ = ["case_stem", "error_result", "run_batch", "run_one", "shard", "worst_verdict"]

VERDICT_ORDER = ("pass", "fail", "error")  # worst last


def run_batch(impls, config: RunConfig, *, case=None, jobs=1, on_done=None, work=None) -> list[CheckResult]:
    """CheckResults of `impls` (in that order), `jobs` at a time, each as run_file's with this
    `config` (and `case`). `on_done(done, total)` is called as each implementation finishes.
    `work(impl, config, case, case_stem)`, a module-level function (it travels to the workers
    by name), replaces `run_one` as each job."""
    work = work or run_one
    impls = [str(i) for i in impls]
    results: list[CheckResult | None] = [None] * len(impls)
    count = [0]

    def finish(k, result):
        results[k] = result
        count[0] += 1
        if on_done:
            on_done(count[0], len(impls))

    if jobs <= 1 or len(impls) <= 1:
        for k, impl in enumerate(impls):
            finish(k, work(impl, config, case, case_stem(impl)))
        return results  # type: ignore[return-value]
    scratch = tempfile.mkdtemp(prefix="bpv-class-")
    os.chmod(scratch, 0o711)  # run by root, each child's own uid must reach its work directory
    try:
        broken = []
        with _pool(min(jobs, len(impls)), scratch) as pool:
            futures = {pool.submit(work, impl, config, case, case_stem(impl)): k for k, impl in enumerate(impls)}
            for future in as_completed(futures):
                try:
                    finish(futures[future], future.result())
                except BrokenProcessPool:  # some worker died: every unfinished job of the pool with it
                    broken.append(futures[future])
        _alone(sorted(broken), impls, config, case, jobs, scratch, finish, work)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results  # type: ignore[return-value]


def _pool(workers: int, scratch: str) -> ProcessPoolExecutor:
    """Workers started by spawn, whose temporary directories (their children's work
    directories) go into `scratch`."""
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_use_tempdir, initargs=(scratch,))


def _use_tempdir(path: str) -> None:
    tempfile.tempdir = path


def _alone(ks, impls, config, case, jobs, scratch, finish, work) -> None:
    """Each job of `ks` again, each in a fresh pool of one worker (`jobs` at a time): a worker
    that dies now died checking that submission, and costs it alone."""
    ks = list(ks)
    running: dict = {}
    while ks or running:
        while ks and len(running) < jobs:
            k = ks.pop(0)
            pool = _pool(1, scratch)
            running[pool.submit(work, impls[k], config, case, case_stem(impls[k]))] = (k, pool)
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            k, pool = running.pop(future)
            try:
                finish(k, future.result())
            except BrokenProcessPool:
                why = "the worker process checking it died (killed, or out of memory), alone in its worker, twice"
                finish(k, error_result(impls[k], why, 0.0, config.seed))
            pool.shutdown(wait=True)


def run_one(impl, config: RunConfig, case=None, case_stem=None) -> CheckResult:
    """One implementation's CheckResult exactly as a class run makes it: a harness error (not
    importable, no `gradients`, a harness bug) is an "error" result, never raised. What each
    job of --jobs and each task of --scheduler runs (with the submission's `case_stem`)."""
    return _job(str(impl), config, case, case_stem)


def case_stem(impl) -> str:
    """The name a class run saves a submission's minimal cases under: its file's stem (made a
    safe file name: safe_io.file_stem) and 8 hex digits of its path as given, normalised (`a/impl.py` and `b/impl.py` differ; the same path
    gives the same name on every machine and in every shard)."""
    impl = str(impl)
    stem = file_stem(impl)
    return f"{stem}-{hashlib.sha256(os.path.normpath(impl).encode('utf-8')).hexdigest()[:8]}"


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


def _job(impl, config, case=None, stem=None):
    """One implementation's CheckResult; a harness error becomes an "error" result, never raised."""
    start = time.perf_counter()
    try:
        return run_file(impl, config, case=case, case_stem=stem)
    except VerifierError as exc:
        return error_result(impl, str(exc), time.perf_counter() - start, config.seed)
    except Exception as exc:  # a harness bug on one implementation must not stop the class
        return error_result(impl, harness_bug(exc), time.perf_counter() - start, config.seed)


def error_result(impl, message, seconds, seed):
    return CheckResult(
        verdict="error",
        seed=seed,
        examples=0,
        implementation=shown_name(impl),
        references=(),
        failures=(Failure(kind="error", detail=clean_text(message)),),  # may quote the code's import error
        seconds=seconds,
    )


def worst_verdict(results) -> str:
    """The worst verdict of a class: error > fail > pass (pass for none)."""
    return max(
        (r.verdict for r in results), key=lambda v: VERDICT_ORDER.index(v) if v in VERDICT_ORDER else 2, default="pass"
    )
