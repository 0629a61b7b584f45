"""Points from a rubric: partial credit by what passed, items never judged earn nothing and say
why, a harness error earns nothing; bad rubrics are refused with the fix."""

import json

import pytest

from verifier.errors import SpecError
from verifier.records import CheckResult, Failure, TensorVerdict
from verifier.run.grading import grade, load_rubric, parse_rubric, with_grading


def _tensor(layer, param, failed=0, compared=6):
    return TensorVerdict(layer, param, compared, 0, failed, 0.5 if failed else 1e-16, 2.0 if failed else 1e-15, ())


def _result(tensors, failures=(), verdict=None, judged=None, examples=10):
    return CheckResult(
        verdict=verdict or ("fail" if failures else "pass"),
        seed=0,
        examples=examples,
        implementation="student.py",
        references=("delta_rule",),
        failures=tuple(failures),
        tensors=tuple(tensors),
        extra={"judged": judged} if judged else {},
    )


RIGHT = [_tensor(1, "W"), _tensor(1, "b"), _tensor(2, "W"), _tensor(2, "b")]
RUBRIC = {
    "gradients": 60,
    "loss": 10,
    "train_step": 20,
    "misbehaviour": {"exception": 5, "mutated_input": 5},
}


def _scores(g):
    return {it["name"]: it["score"] for it in g["items"]}


def test_a_correct_submission_earns_every_point():
    g = grade(_result(RIGHT, judged={"loss": 10, "train_step": 10}), parse_rubric(RUBRIC))
    assert g["score"] == g["max_score"] == 100
    assert all(it["status"] == "passed" for it in g["items"])


def test_partial_credit_follows_what_passed():
    """Layer 2's db wrong (half of layer 2's 30), a wrong loss value, a crash on one case."""
    tensors = RIGHT[:3] + [_tensor(2, "b", failed=3)]
    failures = [
        Failure("mismatch", "db wrong", layer=2, param="b"),
        Failure("loss_mismatch", "loss 3 instead of 1.5"),
        Failure("exception", "ValueError: deep"),
    ]
    g = grade(_result(tensors, failures, judged={"loss": 10, "train_step": 10}), parse_rubric(RUBRIC))
    assert _scores(g) == {
        "layer 1 gradients (dW, db)": 30,
        "layer 2 gradients (dW, db)": 15,
        "loss value": 0,
        "train_step": 20,
        "no exception": 0,
        "no mutated input": 5,
    }
    assert g["score"] == 70 and g["max_score"] == 100
    layer2 = g["items"][1]
    assert layer2["status"] == "failed" and layer2["failures"] == [0]
    assert "db wrong on 3 of 6 entries" in layer2["note"]


def test_an_item_never_judged_earns_nothing_and_says_why():
    g = grade(_result(RIGHT), parse_rubric({"gradients": {"layers": {"1": 10, "3": 10}}, "loss": 5, "train_step": 5}))
    items = {it["name"]: it for it in g["items"]}
    assert items["layer 1 gradients (dW, db)"]["score"] == 10
    assert items["layer 3 gradients"]["score"] == 0 and "no case had a layer 3" in items["layer 3 gradients"]["note"]
    assert items["loss value"]["score"] == 0 and "return (loss, grads)" in items["loss value"]["note"]
    assert items["train_step"]["score"] == 0 and "no train_step" in items["train_step"]["note"]


def test_a_wrong_train_step_loses_its_points_only():
    failures = [Failure("update_mismatch", "train_step(lr=0.1) is not W - lr dJ/dW at layer 1 W", layer=1, param="W")]
    g = grade(_result(RIGHT, failures, judged={"train_step": 4}), parse_rubric({"gradients": 10, "train_step": 10}))
    assert _scores(g)["train_step"] == 0
    assert g["score"] == 10


def test_a_harness_error_earns_nothing():
    r = _result(RIGHT, [Failure("error", "could not import")], verdict="error", judged={"loss": 2})
    g = grade(r, parse_rubric(RUBRIC))
    assert g["score"] == 0 and g["max_score"] == 100


def test_the_default_rubric_adds_loss_and_train_step_only_when_judged():
    assert [it["name"] for it in grade(_result(RIGHT))["items"]] == [
        "layer 1 gradients (dW, db)",
        "layer 2 gradients (dW, db)",
    ]
    names = [it["name"] for it in grade(_result(RIGHT, judged={"loss": 3, "train_step": 3}))["items"]]
    assert names[-2:] == ["loss value", "train_step"]


def test_layer_pairs_hook_reads_what_the_layer_check_leaves():
    rubric = parse_rubric({"layers": {"affine": 4, "relu": 2}})
    r = _result(RIGHT)
    r = CheckResult(**{**r.__dict__, "extra": {"layer_pairs": {"affine": {"judged": 5, "failed": 0}}}})
    assert _scores(grade(r, rubric)) == {"layer affine": 4, "layer relu": 0}


def test_with_grading_keeps_points_and_audience_in_extra():
    r = with_grading(_result(RIGHT), parse_rubric({"gradients": 8}), "student")
    assert r.extra["grading"]["audience"] == "student" and r.extra["grading"]["score"] == 8
    with pytest.raises(SpecError, match="audience 'teacher'"):
        with_grading(_result(RIGHT), None, "teacher")


@pytest.mark.parametrize(
    "rubric, message",
    [
        ({"gradient": 10}, "unknown key.*gradient.*use gradients"),
        ({"gradients": -1}, "gradients.points = -1; give a number of points >= 0"),
        ({"loss": "ten"}, "loss = 'ten'"),
        ({"gradients": {"layers": {"first": 1}}}, "layers are numbered 1, 2"),
        ({"gradients": {"per_layer": 1}}, "gradients has per_layer"),
        ({"misbehaviour": {"segfault": 1}}, "misbehaviour kind.*segfault.*use exception"),
        ({"misbehaviour": 3}, "misbehaviour must be a table"),
    ],
    ids=["unknown key", "negative", "not a number", "layer name", "gradients key", "unknown kind", "not a table"],
)
def test_a_bad_rubric_is_refused_with_the_fix(rubric, message):
    with pytest.raises(SpecError, match=message):
        parse_rubric(rubric)


def test_a_rubric_file_in_toml_or_json(tmp_path):
    toml = tmp_path / "rubric.toml"
    toml.write_text("loss = 2\n[gradients]\npoints = 6\n[gradients.layers]\n1 = 4\n[misbehaviour]\nexception = 1\n")
    as_json = tmp_path / "rubric.json"
    as_json.write_text(
        json.dumps({"gradients": {"points": 6, "layers": {"1": 4}}, "loss": 2, "misbehaviour": {"exception": 1}})
    )
    assert load_rubric(str(toml)) == load_rubric(str(as_json))
    broken = tmp_path / "broken.toml"
    broken.write_text("gradients = \n")
    with pytest.raises(SpecError, match="not a valid rubric file"):
        load_rubric(str(broken))
    with pytest.raises(SpecError, match="cannot read it"):
        load_rubric(str(tmp_path / "absent.json"))


def test_a_layers_file_earns_points_per_layer_from_its_own_check():
    """End to end: run/layers.py leaves what the rubric's [layers] items read; the classic bugs
    lose exactly their layers' points, the correct file (the twin) earns them all."""
    from conftest import EXAMPLES

    from verifier.run.contract import run_file

    rubric = parse_rubric({"layers": {"affine": 4, "tanh": 2, "softmax_loss": 2}})
    scores = {}
    for name in ("correct", "classic_bugs"):
        r = run_file(str(EXAMPLES / "layers" / f"{name}.py"), examples=6, layers=("affine", "tanh", "softmax_loss"))
        scores[name] = _scores(grade(r, rubric))
    assert scores["correct"] == {"layer affine": 4, "layer tanh": 2, "layer softmax_loss": 2}
    assert scores["classic_bugs"] == {"layer affine": 0, "layer tanh": 2, "layer softmax_loss": 0}
