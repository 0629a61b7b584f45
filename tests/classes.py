"""A small class of generated submissions for the class-run tests (shards, merge, a cluster):
correct ones and a few kinds of buggy ones, each a standalone file with its own name."""

from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLES

CORRECT = (EXAMPLES / "bug_sign_flip.py").read_text().replace("2 * (T - Y)  # BUG: dJ/dy = 2 (y - t)", "2 * (Y - T)")
VARIANTS = {
    "correct": CORRECT,
    "sign": (EXAMPLES / "bug_sign_flip.py").read_text(),
    "scale": CORRECT.replace("2 * (Y - T)", "(Y - T)"),
    "crash": CORRECT.replace(
        "def gradients(params, X, T, spec):", "def gradients(params, X, T, spec):\n    raise RuntimeError('todo')"
    ),
    "syntax": "def gradients(params, X, T, spec)\n    return []\n",
}
ORDER = ("correct", "sign", "correct", "scale", "correct", "crash", "correct", "syntax")


def make_class(root: Path, n: int) -> list[str]:
    """`n` submissions under `root` (student_00.py ...), kinds cycling through ORDER; their paths."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        kind = ORDER[k % len(ORDER)]
        path = root / f"student_{k:02d}.py"
        path.write_text(f"# submission {k}: {kind}\n" + VARIANTS[kind])
        out.append(str(path))
    return out


def kind_of(path: str) -> str:
    return Path(path).read_text().splitlines()[0].split(": ")[1]


def crashing_work(impl, config, case=None, case_stem=None):
    """A class run's job (batch.run_batch's `work`) whose worker process dies, killed, when the
    submission's name says crash_worker: a worker crash the harness must pin on that one."""
    import os
    import signal

    from verifier.run.batch import run_one

    if "crash_worker" in os.path.basename(str(impl)):
        os.kill(os.getpid(), signal.SIGKILL)  # this worker, which this test's run started
    return run_one(impl, config, case, case_stem)
