"""`check A.py B.py ... --scheduler ADDRESS`: a class run on a Dask distributed cluster.

Each submission is one task, and the task is `run_one` exactly as each job of `--jobs` runs it:
on the worker, the submission gets its own sandbox child, so isolation is the same as on one
machine. A submission given as a file travels with its task (its source, under its own file
name in a fresh directory on the worker), so the workers need no shared file system; the
result names it as the command line did. An importable module name is passed as it is: the
workers must be able to import it.

A worker that dies (killed, out of memory, its machine gone) costs only the tasks it held: the
scheduler hands each to another worker, up to its `allowed-failures` (distributed's default:
3), after which that task, and no other, is an "error" row saying the worker died.

distributed is imported here only, and only when a scheduler is asked for: the `cluster` extra
(`pip install 'backprop-verifier[cluster]'`); `--jobs` works without it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

from .. import safe_io
from ..errors import SpecError
from ..records import CheckResult, RunConfig
from .batch import case_stem, error_result, run_one

__all__ = ["CONNECT_TIMEOUT", "remote_check", "run_on_cluster"]

CONNECT_TIMEOUT = "20s"  # how long to wait for the scheduler to answer


def _client(address):
    try:
        from distributed import Client
    except ImportError:
        raise SpecError(
            "--scheduler needs Dask's distributed: pip install 'backprop-verifier[cluster]' (or drop "
            "--scheduler and use --jobs N on this machine)"
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpecError(
            f"--scheduler {address}: no Dask scheduler answered there ({exc}); start one "
            "(dask scheduler, or a LocalCluster) and give its address, e.g. tcp://127.0.0.1:8786"
        ) from None


def _payload(impl: str):
    """(name, source or None): a file's text travels with its task; a module name does not."""
    if os.path.isfile(impl):
        try:
            with open(impl, encoding="utf-8") as f:
                return impl, f.read()
        except (OSError, UnicodeDecodeError):
            return impl, None  # the worker reports it, as --jobs would
    return impl, None


def remote_check(name: str, source: str | None, config: RunConfig, case=None) -> CheckResult:
    """The task a worker runs: `run_one` on the submission (written out first when its source
    came along), with the result naming it as the command line did, and its case files named
    as --jobs names them (batch.case_stem of the name given)."""
    if source is None:
        return run_one(name, config, case, case_stem(name))
    with tempfile.TemporaryDirectory(prefix="backprop-verify-task-") as work:
        path = os.path.join(work, os.path.basename(name) or "impl.py")
        safe_io.write_text(path, source, own_dir=True, what="submission copy")
        result = run_one(path, config, case, case_stem(name))
    return _renamed(result, path, name)


def _renamed(result: CheckResult, path: str, name: str) -> CheckResult:
    """The worker's copy's path replaced by the submission's name in the result's words."""

    def fix(text, old=path, new=name):
        return text.replace(old, new) if isinstance(text, str) else text

    def fix_replay(text):
        return fix(text, safe_io.shell_word(path), safe_io.shell_word(name))

    failures = tuple(replace(f, detail=fix(f.detail), replay=fix_replay(f.replay)) for f in result.failures)
    return replace(result, implementation=safe_io.shown_name(name), failures=failures)


def run_on_cluster(impls, config: RunConfig, address, *, case=None, on_done=None) -> list[CheckResult]:
    """CheckResults of `impls` (in that order), one task each on the cluster at `address`."""
    from distributed import as_completed

    impls = [str(i) for i in impls]
    results: list[CheckResult | None] = [None] * len(impls)
    client = _client(address)
    try:
        futures = {}
        for k, impl in enumerate(impls):
            name, source = _payload(impl)
            future = client.submit(remote_check, name, source, config, case, pure=False, key=f"check-{k}")
            futures[future] = k
        for done, future in enumerate(as_completed(futures), 1):
            k = futures[future]
            try:
                results[k] = future.result()
            except Exception as exc:  # the task's worker died too often (KilledWorker), or was lost
                detail = f"the cluster worker checking it died or was lost: {type(exc).__name__}: {exc}"
                results[k] = error_result(impls[k], detail, 0.0, config.seed)
            if on_done:
                on_done(done, len(impls))
    finally:
        client.close()
    return results  # type: ignore[return-value]
