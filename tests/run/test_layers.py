"""Layers files (DESIGN 3a): the correct course layers pass; each classic layer bug, planted in
a copy of them, fails naming the layer and the argument; misbehaviour is a row."""

from __future__ import annotations

import os

import pytest
from conftest import EXAMPLES

from verifier.errors import SpecError
from verifier.records import RunConfig
from verifier.report import render
from verifier.run.contract import run_file

CORRECT = EXAMPLES / "layers" / "correct.py"
QUICK = RunConfig(examples=40, cases_dir=None)

# (name, text replaced in correct.py, replacement, layer, argument, diagnosis label or None)
BUGS = [
    ("dx with the wrong matrix", "dx = (dout @ w.T)", "dx = (dout @ w.T @ w @ w.T)", "affine", "dx", None),
    ("db not summed over the batch", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)", "affine", "db", "scale"),
    ("relu's mask on the wrong side", "dout * (cache > 0)", "dout * (cache < 0)", "relu", "dx", None),
    (
        "sigmoid's h' of the input",
        "return out, out\n\n\ndef sigmoid_backward",
        "return out, x\n\n\ndef sigmoid_backward",
        "sigmoid",
        "dx",
        "activation_derivative",
    ),
    (
        "tanh's h' of the input",
        "out = np.tanh(x)\n    return out, out",
        "out = np.tanh(x)\n    return out, x",
        "tanh",
        "dx",
        "activation_derivative",
    ),
    ("softmax_loss dx not divided by N", "return loss, dx / N", "return loss, dx", "softmax_loss", "dx", "scale"),
    ("svm margin inconsistent", "counts = (margins > 0)", "counts = (x - correct + 0.5 > 0)", "svm_loss", "dx", None),
    (
        "batchnorm dgamma not summed",
        "dgamma = (dout * xhat).sum(axis=0)",
        "dgamma = (dout * xhat)[0]",
        "batchnorm",
        "dgamma",
        None,
    ),
    (
        "batchnorm dbeta not summed",
        "dbeta = dout.sum(axis=0)",
        "dbeta = dout.mean(axis=0)",
        "batchnorm",
        "dbeta",
        "scale",
    ),
]


def planted(tmp_path, old, new, name="bug.py"):
    text = CORRECT.read_text()
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def test_the_correct_layers_pass():
    result = run_file(str(CORRECT), QUICK)
    assert result.verdict == "pass", render(result, "text")
    judged = {row["layer"]: row["judged_by"] for row in result.extra["layers"]}
    assert judged == {
        "affine": "layer_reference",
        "relu": "layer_reference",
        "sigmoid": "layer_reference",
        "tanh": "layer_reference",
        "softmax_loss": "layer_reference",
        "svm_loss": "layer_reference",
        "batchnorm": "self",
    }


@pytest.mark.parametrize("bug", BUGS, ids=[b[0] for b in BUGS])
def test_each_classic_layer_bug_fails_naming_layer_and_argument(tmp_path, bug):
    _, old, new, layer, arg, label = bug
    path = planted(tmp_path, old, new)
    result = run_file(str(path), RunConfig(examples=40, cases_dir=None, layers=(layer,)))
    assert result.verdict == "fail"
    rows = [f for f in result.failures if f.kind == "mismatch"]
    assert rows, render(result, "text")
    assert (rows[0].layer_name, rows[0].param) == (layer, arg), render(result, "text")
    if label:
        assert rows[0].diagnosis == label, render(result, "text")
    for fmt in ("text", "markdown", "json", "junit", "html"):
        doc = render(result, fmt)
        assert layer in doc and arg in doc, fmt
    assert f"layer {layer} {arg}" in render(result, "text")
    assert rows[0].worst, "the worst entries are shown"


def test_softmax_loss_without_the_division_says_the_factor_is_the_batch(tmp_path):
    path = planted(tmp_path, "return loss, dx / N", "return loss, dx")
    result = run_file(str(path), RunConfig(examples=40, cases_dir=None, layers=("softmax_loss",)))
    row = result.failures[0]
    assert row.diagnosis == "scale" and "B" in row.detail.split("the gradient is ")[1], row.detail


def test_mutating_dout_is_mutated_input(tmp_path):
    path = planted(tmp_path, "return dout * (cache > 0)", "dout[cache <= 0] = 0\n    return dout")
    result = run_file(str(path), RunConfig(examples=20, cases_dir=None, layers=("relu",)))
    kinds = {(f.kind, f.layer_name) for f in result.failures}
    assert ("mutated_input", "relu") in kinds, render(result, "text")
    assert "dout" in next(f.detail for f in result.failures if f.kind == "mutated_input")


def test_mutating_the_cache_inputs_is_mutated_input(tmp_path):
    path = planted(tmp_path, "    x, w, b = cache\n", "    x, w, b = cache\n    x -= 0\n    w *= 1.5\n")
    result = run_file(str(path), RunConfig(examples=20, cases_dir=None, layers=("affine",)))
    row = next(f for f in result.failures if f.kind == "mutated_input")
    assert row.layer_name == "affine" and "w" in row.detail


def test_a_crashing_backward_is_an_exception_row(tmp_path):
    path = planted(tmp_path, "    return dout * (1 - cache**2)", "    raise RuntimeError('not yet')")
    result = run_file(str(path), RunConfig(examples=10, cases_dir=None, layers=("tanh",)))
    row = result.failures[0]
    assert (row.kind, row.layer_name) == ("exception", "tanh") and "tanh_backward raised" in row.detail


def test_an_unknown_layer_without_declaration_is_a_clear_error(tmp_path):
    path = planted(tmp_path, 'LAYERS = {"batchnorm"', 'LAYERS_OFF = {"batchnorm"')
    with pytest.raises(SpecError, match="declare its shapes in LAYERS"):
        run_file(str(path), RunConfig(examples=5, cases_dir=None, layers=("batchnorm",)))


def test_layer_picks_and_a_missing_name_says_what_exists():
    result = run_file(str(CORRECT), RunConfig(examples=10, cases_dir=None, layers=("relu",)))
    assert [r["layer"] for r in result.extra["layers"]] == ["relu"]
    with pytest.raises(SpecError, match="defines no such layer; it defines affine"):
        run_file(str(CORRECT), RunConfig(examples=10, cases_dir=None, layers=("conv",)))


def test_the_classic_bugs_example_fails_on_exactly_its_planted_arguments():
    """examples/layers/classic_bugs.py: every planted (layer, argument) is a row of its own, even
    two in one layer (affine's dx and db, batchnorm's dgamma and dbeta); tanh, right, has none."""
    result = run_file(str(EXAMPLES / "layers" / "classic_bugs.py"), QUICK)
    rows = {(f.layer_name, f.param): f for f in result.failures}
    assert set(rows) == {
        ("affine", "dx"),
        ("affine", "db"),
        ("relu", "dx"),
        ("sigmoid", "dx"),
        ("softmax_loss", "dx"),
        ("svm_loss", "dx"),
        ("batchnorm", "dgamma"),
        ("batchnorm", "dbeta"),
    }, render(result, "text")
    assert all(f.kind == "mismatch" for f in rows.values())
    assert rows[("affine", "db")].diagnosis == "scale" and "1/B" in rows[("affine", "db")].detail
    assert rows[("sigmoid", "dx")].diagnosis == "activation_derivative", rows[("sigmoid", "dx")].detail
    assert "applied to the input x" in rows[("sigmoid", "dx")].detail
    # relu's wrong-side mask leaves dx at zero only on calls whose inputs are all positive: no label
    assert rows[("relu", "dx")].diagnosis is None, rows[("relu", "dx")].detail


def test_a_layers_result_states_its_isolation_level_like_a_network_check():
    from verifier.run.check import run_check as network_check
    from verifier.run.contract import run_file

    layered = run_file(str(EXAMPLES / "layers" / "correct.py"), examples=3, layers=("tanh",))
    network = network_check(str(EXAMPLES / "correct_vectorized.py"), examples=2)
    assert layered.isolation and layered.isolation == network.isolation
    assert layered.isolation_mechanisms == network.isolation_mechanisms


def test_what_a_layer_says_is_made_inert_like_every_row(tmp_path):
    """A backward whose exception text fakes a PASS on a terminal and a CI workflow command:
    its row keeps the words, not the control sequences (safe_io.clean_text, as rows.row does)."""
    from verifier.run.contract import run_file

    os.chmod(tmp_path, 0o755)  # run as root, the child reads the file with its own uid
    impl = tmp_path / "loud_layers.py"
    impl.write_text(
        "def tanh_forward(x):\n    import numpy as np\n    out = np.tanh(x)\n    return out, out\n\n"
        "def tanh_backward(dout, cache):\n"
        "    raise ValueError('\\x1b[2K\\x1b[1GPASS\\n::error::all good')\n"
    )
    r = run_file(str(impl), examples=2, layers=("tanh",))
    details = [f.detail for f in r.failures if f.kind == "exception"]
    assert r.verdict == "fail" and details, r.failures
    assert all("\x1b" not in d and "\n::error::" not in d and "PASS" in d for d in details), details
