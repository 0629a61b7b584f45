"""The anchors this project is timed against, on the same network, parameters and data.

- torch.autograd.gradcheck (fast_mode=False: the numerical Jacobian entry by entry; fast_mode=True:
  one random projection) on a torch-native MLP. The correct subject is torch's autograd; the
  planted bug is a custom autograd Function for the sse loss whose backward forgets the 2.
- The plain numpy loop of central differences over every entry (CS231n's
  eval_numerical_gradient, h = 1e-5) against a numpy implementation's gradient, judged by the
  largest relative error max |a - n| / max(1e-8, |a| + |n|) with the threshold REL_THRESHOLD.

Each function returns a verdict, "pass" or "fail".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

# CS231n's scale: > 1e-2 "probably wrong", 1e-4..1e-2 "uncomfortable", < 1e-4 "usually okay for
# objectives with kinks" (and too high without them), < 1e-7 "be happy". The loosest "okay" line:
REL_THRESHOLD = 1e-4


# --- the project as an installed copy runs --------------------------------------------------


def compile_project() -> str:
    """Compile the project's bytecode (verifier/, reference_impls/) as `pip install` does, so a
    timed command runs what an installed copy runs even where PYTHONDONTWRITEBYTECODE keeps a
    checkout from caching it (torch, installed by pip, has its bytecode already). The line to
    put in a report."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "verifier"), str(root / "reference_impls")],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"Python bytecode: compiling it failed ({done.stdout.strip()[-200:]}), so each process compiled the project."
    return "Python bytecode: compiled beforehand, as an installed copy has it (python -m compileall)."


# --- torch.autograd.gradcheck ---------------------------------------------------------------


def torch_inputs(case):
    """The case's parameters as float64 leaf tensors [W1, b1, W2, b2, ...], and X, T."""
    import torch

    flat = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for W, b in case.params for a in (W, b)]
    return flat, torch.tensor(case.X), torch.tensor(case.T)


def torch_loss(X, T, activations, planted_bug=False):
    """J(W1, b1, ...) = sum (y - t)^2 of the MLP, in torch; with `planted_bug` the loss's backward
    returns (y - t) instead of 2 (y - t)."""
    import torch

    class HalfSSE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, Y):
            ctx.save_for_backward(Y)
            return ((Y - T) ** 2).sum()

        @staticmethod
        def backward(ctx, g):
            (Y,) = ctx.saved_tensors
            return g * (Y - T)  # BUG: 2 (Y - T)

    def J(*flat):
        A = X
        for l, name in enumerate(activations):
            Z = A @ flat[2 * l].T + flat[2 * l + 1]
            A = torch.tanh(Z) if name == "tanh" else Z
        return HalfSSE.apply(A) if planted_bug else ((A - T) ** 2).sum()

    return J


def gradcheck(case, fast_mode, planted_bug=False):
    import torch

    flat, X, T = torch_inputs(case)
    ok = torch.autograd.gradcheck(
        torch_loss(X, T, case.spec.activations, planted_bug), flat, fast_mode=fast_mode, raise_exception=False
    )
    return "pass" if ok else "fail"


# --- the numpy per-entry loop -----------------------------------------------------------------


def numpy_loss(params, X, T, activations):
    """The student's forward: J = sum (y - t)^2."""
    A = X
    for (W, b), name in zip(params, activations):
        Z = A @ W.T + b
        A = np.tanh(Z) if name == "tanh" else Z
    return np.sum((A - T) ** 2)


def eval_numerical_gradient(f, x, h=1e-5):
    """CS231n's loop: a central difference for every entry of x, changed in place and restored."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f()
        x[ix] = old - h
        fxmh = f()
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        it.iternext()
    return grad


def numpy_loop(case, gradients):
    """(verdict, largest relative error) of `gradients` (a user implementation's function)
    against the loop's central differences, every entry of every tensor."""
    from types import SimpleNamespace

    params = [(W.copy(), b.copy()) for W, b in case.params]
    spec = SimpleNamespace(sizes=list(case.spec.sizes), activations=list(case.spec.activations), loss=case.spec.loss)
    out = gradients(params, case.X, case.T, spec)
    grads = out[1] if isinstance(out, tuple) else out
    worst = 0.0
    for (W, b), (dW, db) in zip(params, grads):
        for x, analytic in ((W, dW), (b, db)):
            numeric = eval_numerical_gradient(lambda: numpy_loss(params, case.X, case.T, spec.activations), x)
            rel = np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))
            worst = max(worst, float(rel.max()))
    return ("pass" if worst < REL_THRESHOLD else "fail"), worst
