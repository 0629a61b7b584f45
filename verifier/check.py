"""Check a user's implementation: generated cases, an isolated child, per-entry judgement,
a shrunk smallest failing case and a diagnosis.

Compute, then judge, then report: `run_check` returns a CheckResult; the CLI and the assert
helper turn it into an exit code or an exception.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from . import casefile, error_model, strategies
from .compare import compare_gradients, entry_errors, relative
from .diagnosis import diagnose
from .errors import ReferenceDisagreement, SpecError
from .records import CheckResult, Failure
from .references import LOSS_PAIR, REFERENCES, full_oracles
from .sandbox import Sandbox

MODES = ("full", "fast")  # fast: see verifier/fast.py
MISBEHAVIOUR = ("exception", "timeout", "exited")  # not shrunk: each try can cost a timeout
FLOAT_KINDS = {"float16": np.float16, "float32": np.float32, "float64": np.float64}
HEATMAP_MAX = 64  # cells per side of a failure's heatmap; larger tensors are max-pooled


class _Failed(Exception):
    def __init__(self, case, failures):
        super().__init__(failures[0].detail)
        self.case, self.failures = case, failures


def spec_dict(spec):
    return {"sizes": list(spec.sizes), "activations": list(spec.activations), "loss": spec.loss}


class Oracle:
    """The references' answer for one case, cross-checked before anything is judged."""

    def __init__(self, case, oracles=None):
        oracles = oracles or full_oracles(case)  # the references of full mode: see there
        outs = {n: REFERENCES[n](case) for n in oracles}
        self.loss, self.grads = outs[oracles[0]].loss, outs[oracles[0]].grads
        self.case, self.jd64, self.names = case, error_model.judgement(case), tuple(oracles)
        tol = [(2 * w, 2 * b) for w, b in self.jd64.tol]
        kink = [(w > 0, b > 0) for w, b in self.jd64.radius]
        where = f"on sizes {list(case.spec.sizes)}: a harness bug, please report it"
        for name in oracles[1:]:
            for v in compare_gradients(outs[name].grads, self.grads, tol, excused=kink):
                if v.failed:
                    raise ReferenceDisagreement(
                        f"references {oracles[0]} and {name} disagree at layer {v.layer} {v.param} {where}")
        a, b = LOSS_PAIR  # the two forwards that share no code
        if a in outs and b in outs and not abs(outs[a].loss - outs[b].loss) <= 2 * self.jd64.loss_tol:
            raise ReferenceDisagreement(
                f"loss values differ: {a} {outs[a].loss!r}, {b} {outs[b].loss!r} {where}")

    def judgement(self, dtype):
        """Tolerances for a result in `dtype`: its own rounding plus the oracle's."""
        jd = self.jd64 if np.dtype(dtype) == np.float64 else error_model.judgement(self.case, dtype)
        tol = [(tw + ow, tb + ob) for (tw, tb), (ow, ob) in zip(jd.tol, self.jd64.tol)]
        return jd._replace(tol=tol, loss_tol=jd.loss_tol + self.jd64.loss_tol)


def _row(kind, detail, case, **kw):
    return Failure(kind, detail, case=casefile.summary(case), **kw)


def _structure(case, grads, layout):
    """([(dW, db)] float arrays in the model's layout, dtype name) or a bad_output Failure."""
    sizes, L = case.spec.sizes, len(case.params)
    if len(grads) != L:
        return _row("bad_output", f"expected {L} (dW, db) pairs, got {len(grads)}", case)
    out, kinds = [], []
    for l, (dW, db) in enumerate(grads, start=1):
        want = (sizes[l], sizes[l - 1])
        for name, a in (("W", dW), ("b", db)):
            if a.dtype.name not in FLOAT_KINDS:
                return _row("bad_output", f"layer {l} d{name}: dtype {a.dtype}, expected a float array",
                            case, layer=l, param=name)
            kinds.append(a.dtype.name)
        if layout == "in_out":
            dW = dW.T
        if dW.shape != want:
            transposed = dW.shape == want[::-1]
            return _row("bad_output", f"layer {l} dW: shape {dW.shape}, expected {want} (W[l] is (n_l, n_{{l-1}}))",
                        case, layer=l, param="W", diagnosis="transposed" if transposed else None)
        if db.shape != (sizes[l],):
            return _row("bad_output", f"layer {l} db: shape {db.shape}, expected ({sizes[l]},)",
                        case, layer=l, param="b")
        out.append((dW, db))
    dtype = min(kinds, key=lambda k: np.finfo(FLOAT_KINDS[k]).bits)
    return out, dtype


def judge_gradients(case, oracle, grads, loss, layout=None):
    """(failures, tensor verdicts, dtype name) for one call's returned gradients."""
    shaped = _structure(case, grads, layout)
    if isinstance(shaped, Failure):
        return [shaped], [], None
    grads, dtype = shaped
    jd = oracle.judgement(FLOAT_KINDS[dtype])
    failures = [f for l, (g, e) in enumerate(zip(grads, oracle.grads), start=1)
                for p, name in enumerate("Wb") for f in nonfinite_rows(case, l, name, g[p], e[p])]
    verdicts = compare_gradients(grads, oracle.grads, jd.tol, jd.centre, jd.radius)
    for v in verdicts:
        if v.failed and not any(f.layer == v.layer and f.param == v.param for f in failures):
            failures.append(mismatch_row(case, oracle, grads, jd, v))
    return failures + loss_rows(case, oracle, loss, jd), verdicts, dtype


def nonfinite_rows(case, l, name, got, expected):
    """A row for the first NaN or infinity where the right value is finite, if any."""
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if not bad.any():
        return []
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return [_row("nonfinite", f"layer {l} d{name} holds {got[idx]} where {expected[idx]:.6g} is right",
                 case, layer=l, param=name, index=idx, got=float(got[idx]), expected=float(expected[idx]))]


def mismatch_row(case, oracle, grads, jd, v, note=""):
    """The row of a tensor with wrong entries: its worst entries and its heatmap."""
    w = v.worst[0]
    return _row(
        "mismatch", f"{v.failed} of {v.compared} entries of layer {v.layer} d{v.param} are wrong{note}",
        case, layer=v.layer, param=v.param, index=w.index, got=w.got, expected=w.expected,
        abs_error=w.abs_error, rel_error=w.rel_error, tolerance=w.tolerance, worst=v.worst,
        heatmap=_heatmap(grads, oracle.grads, jd, v.layer, "Wb".index(v.param)))


def loss_rows(case, oracle, loss, jd):
    """A row when the implementation returned a loss value the references do not give."""
    if loss is None or abs(loss - oracle.loss) <= jd.loss_tol:
        return []
    return [_row("loss_mismatch", f"returned loss {loss!r}, the references give {oracle.loss!r}",
                 case, got=float(loss), expected=float(oracle.loss),
                 abs_error=abs(loss - oracle.loss), tolerance=jd.loss_tol)]


def _heatmap(grads, expected, jd, layer, p):
    """Per-entry relative error of one tensor, max-pooled to at most 64x64: a report's picture."""
    k = layer - 1
    _, _, abs_error, nearest = entry_errors(grads[k][p], expected[k][p], jd.tol[k][p],
                                            jd.centre[k][p], jd.radius[k][p])
    rel = np.atleast_2d(relative(abs_error, nearest))
    rel = np.where(np.isnan(rel), np.inf, rel)
    r, c = (-(-n // HEATMAP_MAX) for n in rel.shape)
    if r > 1 or c > 1:
        pad = np.zeros((-(-rel.shape[0] // r) * r, -(-rel.shape[1] // c) * c))
        pad[:rel.shape[0], :rel.shape[1]] = rel
        rel = pad.reshape(pad.shape[0] // r, r, pad.shape[1] // c, c).max(axis=(1, 3))
    return tuple(tuple(float(x) for x in row) for row in rel)


def _learning_rate(oracle):
    """A step small enough that the loss must go down, big enough to see it go down."""
    g2 = sum(float(np.sum(w**2) + np.sum(b**2)) for w, b in oracle.grads)
    return float(min(0.1, 1e-3 * max(abs(oracle.loss), 1e-3) / g2)) if g2 > 0 else 0.1


def judge_update(case, oracle, new_params, lr, layout=None):
    """Failures of a train_step result against W - lr dJ/dW (and the loss going down)."""
    shaped = _structure(case, new_params, layout)
    if isinstance(shaped, Failure):
        return [replace(shaped, kind="bad_output", detail="train_step: " + shaped.detail)]
    new, dtype = shaped
    jd = oracle.judgement(FLOAT_KINDS[dtype])
    u = np.finfo(FLOAT_KINDS[dtype]).eps
    want, tol, flipped = [], [], []
    for (W, b), (dW, db), (tW, tb) in zip(case.params, oracle.grads, jd.tol):
        want.append((W - lr * dW, b - lr * db))
        flipped.append((W + lr * dW, b + lr * db))
        tol.append((lr * tW + 4 * u * np.abs(W), lr * tb + 4 * u * np.abs(b)))
    bad = [v for v in compare_gradients(new, want, tol) if v.failed]
    if not bad:
        return []
    with np.errstate(all="ignore"):
        before = oracle.loss
        after = float(REFERENCES["delta_rule"](replace(case, params=tuple(new))).loss)
    sign = all(not v.failed for v in compare_gradients(new, flipped, tol))
    v, w = bad[0], bad[0].worst[0]
    trend = "went up" if after > before else "went down"
    return [_row(
        "update_mismatch",
        f"train_step(lr={lr:.3g}) is not W - lr dJ/dW at layer {v.layer} {v.param}; the loss {trend} "
        f"({before:.6g} -> {after:.6g})" + ("; the update has the wrong sign (W + lr dJ/dW)" if sign else ""),
        case, layer=v.layer, param=v.param, index=w.index, got=w.got, expected=w.expected,
        abs_error=w.abs_error, rel_error=w.rel_error, tolerance=w.tolerance, worst=v.worst,
        diagnosis="sign" if sign else None)]


def _to_user(params, layout):
    return [(W.T.copy() if layout == "in_out" else W, b) for W, b in params]


def _oracle(case, mode="full", seed=0):
    """(oracle, judge) for a mode: full judges every entry against full_oracles(case); fast
    (verifier.fast) judges each tensor along random directions seeded by `seed`, entries only
    where that fails."""
    if mode == "fast":
        from . import fast

        return fast.FastOracle(case, seed), fast.judge_fast
    return Oracle(case), judge_gradients


def check_case(sandbox, info, case, mode="full", seed=0):
    """(failures, verdicts, dtype) of the implementation on one case."""
    oracle, judge = _oracle(case, mode, seed)
    layout, spec = info.get("LAYOUT"), spec_dict(case.spec)
    outcome = sandbox.gradients(_to_user(case.params, layout), case.X, case.T, spec)
    if outcome.kind not in ("ok", "mutated_input"):
        return [_row(outcome.kind, outcome.detail, case)], [], None
    failures, verdicts, dtype = judge(case, oracle, outcome.grads, outcome.loss, layout)
    if outcome.kind == "mutated_input":
        failures.insert(0, _row("mutated_input", outcome.detail, case))
    if info.get("has_train_step") and not failures:
        lr = _learning_rate(oracle)
        step = sandbox.train_step(_to_user(case.params, layout), case.X, case.T, spec, lr)
        if step.kind not in ("ok", "mutated_input"):
            failures.append(_row(step.kind, "train_step: " + step.detail, case))
        else:
            failures += judge_update(case, oracle, step.params, lr, layout)
    return failures, verdicts, dtype


def require_supported(info, activations, loss, what):
    """SpecError unless the implementation supports every one of these activations and the loss:
    a network it never claimed to handle is the command's mistake, not a failure of the code."""
    checks = (("SUPPORTED_ACTIVATIONS", "activation", activations), ("SUPPORTED_LOSSES", "loss", [loss]))
    for attr, kind, names in checks:
        theirs = info.get(attr)
        missing = [n for n in dict.fromkeys(names) if n is not None and theirs is not None and n not in theirs]
        if missing:
            raise SpecError(f"{what} uses {kind} {', '.join(missing)}, but the implementation's {attr} is "
                            f"{list(theirs)}: use only those, or add the names to {attr}")


def strategy_for(info, *, sizes=None, activations=None, loss=None, batch=None, layer_activations=None,
                 max_depth=4, max_width=6):
    """The cases an implementation is checked on: what it supports, narrowed by the options."""
    def narrow(theirs, ours, what):
        if theirs is None:
            return ours
        theirs = tuple(theirs)
        if ours is None:
            return theirs
        both = tuple(n for n in ours if n in theirs)
        if not both:
            raise SpecError(f"the implementation supports {what} {list(theirs)}, none of {list(ours)}")
        return both

    acts = narrow(info.get("SUPPORTED_ACTIVATIONS"), activations, "activations")
    losses = narrow(info.get("SUPPORTED_LOSSES"), [loss] if loss else None, "losses")
    if layer_activations is not None:  # a pinned homework network
        require_supported(info, layer_activations, None, "the pinned network")
        names = losses or [n for n in strategies.ALL_LOSSES if strategies.compatible(layer_activations[-1], n)]
        specs = strategies.pinned_specs(sizes, layer_activations, names)
    else:
        specs = strategies.network_specs(max_depth=max_depth, max_width=max_width, activations=acts,
                                         losses=losses, sizes=sizes)
    return strategies.cases(specs=specs, batch=batch)


def run_check(impl, *, examples=200, seed=0, sizes=None, activations=None, loss=None, batch=None,
              layer_activations=None, case=None, timeout=10.0, progress=None, cases_dir=None, shrink=True,
              runner=None, mode="full"):
    """Check `impl` (a .py path or module name) and return a CheckResult. `runner`, an object
    with the Sandbox interface, replaces the isolated child (the API's in-process functions)."""
    if mode not in MODES:
        raise SpecError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    start = time.perf_counter()
    with runner if runner is not None else Sandbox(impl, timeout=timeout) as sandbox:
        info = sandbox.describe()
        if case is not None:
            require_supported(info, case.spec.activations, case.spec.loss, "the case")
            failures, verdicts, dtype = check_case(sandbox, info, case, mode, seed)
            runs, minimal = [(case, failures, verdicts, dtype)], case
        else:
            strategy = strategy_for(info, sizes=sizes, activations=activations, loss=loss, batch=batch,
                                    layer_activations=layer_activations)
            runs = _explore(sandbox, info, strategy, examples, seed, progress, mode)
            minimal = None
        failures = [f for r in runs for f in r[1]]
        if case is None and shrink:
            failures, minimal = _shrink(sandbox, info, strategy, examples, seed, failures, mode)
        failures = _finish(sandbox, info, failures, minimal, impl, cases_dir, seed, mode)
    dtypes = sorted({r[3] for r in runs if r[3]}, key=lambda k: np.finfo(FLOAT_KINDS[k]).bits)
    return CheckResult(
        verdict="fail" if failures else "pass", seed=seed, examples=len(runs),
        implementation=str(impl), references=_references(mode, [r[0] for r in runs]),
        failures=tuple(failures), mode=mode,
        dtype=dtypes[0] if dtypes else None, tensors=_per_tensor(runs),
        seconds=time.perf_counter() - start,
        extra={**({"minimal_case": casefile.to_dict(minimal)} if minimal is not None else {}),
               **({"directions_seed": seed} if mode == "fast" else {})},
    )


def _references(mode, cases):
    """The references a run judged against: every one that judged one of its cases."""
    if mode == "fast":
        from . import fast

        return fast.REFERENCES
    return tuple(dict.fromkeys(n for case in cases for n in full_oracles(case)))


def _explore(sandbox, info, strategy, examples, seed, progress, mode="full"):
    runs = []

    def body(case):
        runs.append((case, *check_case(sandbox, info, case, mode, seed)))
        if progress:
            progress(len(runs), examples)

    exc = strategies.explore(strategy, body, examples=examples, seed=seed, shrink=False)
    if exc is not None:
        raise exc
    return runs


def _shrink(sandbox, info, strategy, examples, seed, failures, mode="full"):
    """Replace the first shrinkable failure's rows by those of the smallest case that fails
    the same way; misbehaviour rows (crash, hang, exit) keep the case they happened on."""
    target = next((f for f in failures if f.kind not in MISBEHAVIOUR), None)
    if target is None:
        return failures[:20], None

    def body(case):
        fails = check_case(sandbox, info, case, mode, seed)[0]
        if any(f.kind == target.kind for f in fails):
            raise _Failed(case, fails)

    exc = strategies.explore(strategy, body, examples=examples, seed=seed, shrink=True)
    if isinstance(exc, ReferenceDisagreement):
        raise exc
    if not isinstance(exc, _Failed):  # flaky: keep what was seen
        return failures[:20], None
    rest = [f for f in failures if f.kind in MISBEHAVIOUR][:10]
    return list(exc.failures) + rest, exc.case


def _finish(sandbox, info, failures, minimal, impl, cases_dir, seed, mode="full"):
    """Diagnose the minimal case's gradient failures, save it, and attach the replay command."""
    if minimal is None or not failures:
        return failures
    path = None
    if cases_dir:
        os.makedirs(cases_dir, exist_ok=True)
        stem = os.path.splitext(os.path.basename(str(impl)))[0]
        path = casefile.save(minimal, os.path.join(cases_dir, f"{stem}-minimal.json"))
    replay = f"backprop-verify check {impl} --case {path}" if path else None
    label = _diagnosis(sandbox, info, minimal, mode, seed)
    out = []
    for f in failures:
        if f.case == casefile.summary(minimal):
            f = replace(f, case_file=path, replay=replay)
            if f.kind == "mismatch" and label[0]:
                f = replace(f, diagnosis=label[0], detail=f"{f.detail}; {label[1]}")
        out.append(f)
    return out


def _diagnosis(sandbox, info, case, mode="full", seed=0):
    layout = info.get("LAYOUT")
    outcome = sandbox.gradients(_to_user(case.params, layout), case.X, case.T, spec_dict(case.spec))
    if outcome.kind not in ("ok", "mutated_input"):
        return None, None
    shaped = _structure(case, outcome.grads, layout)
    if isinstance(shaped, Failure):
        return None, None
    grads, dtype = shaped
    oracle = _oracle(case, mode, seed)[0]
    jd = oracle.judgement(FLOAT_KINDS[dtype])
    jd32 = oracle.judgement(np.float32)
    return diagnose(case, grads, oracle.grads, jd.tol, dtype_tol32=jd32.tol, returned_dtype=dtype)


def _per_tensor(runs):
    """Per (layer, param) maximum errors over every case: what the gate's baseline records."""
    best = {}
    for _, _, verdicts, _ in runs:
        for v in verdicts:
            k = (v.layer, v.param)
            if k not in best:
                best[k] = v
            else:
                b = best[k]
                best[k] = replace(b, compared=b.compared + v.compared, excused=b.excused + v.excused,
                                  failed=b.failed + v.failed, max_abs=max(b.max_abs, v.max_abs),
                                  max_rel=max(b.max_rel, v.max_rel), worst=())
    return tuple(best[k] for k in sorted(best))
