"""NotImplementedError declines a case (DESIGN section 3): skipped, counted in every format,
never a failure row; a run that judged too few is exit 2, "nothing to judge"."""

from __future__ import annotations

import json
from pathlib import Path

from verifier import cli
from verifier.report import render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "correct_vectorized.py"


def _write(tmp_path, body):
    base = EXAMPLE.read_text()
    impl = tmp_path / "impl.py"
    impl.write_text(
        base.replace("def gradients(params, X, T, spec):", "def gradients(params, X, T, spec):\n" + body, 1)
    )
    return impl


def test_a_fixed_depth_declines_the_rest_and_passes_with_skips_counted(tmp_path, capsys):
    impl = _write(tmp_path, "    if len(params) != 2:\n        raise NotImplementedError('two layers only')\n")
    code = cli.main(["check", str(impl), "--examples", "40", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "pass" and report["failures"] == []
    assert report["skipped"] > 0 and report["examples"] == 40  # declined cases are replaced by others


def test_skips_show_in_every_format(tmp_path):
    from verifier.run.check import run_check

    impl = _write(tmp_path, "    if len(params) != 2:\n        raise NotImplementedError\n")
    r = run_check(str(impl), examples=30)
    assert r.skipped > 0
    for fmt in ("text", "markdown", "junit", "html"):
        out = render(r, fmt)
        assert f"{r.skipped} skipped" in out or f'value="{r.skipped}"' in out or f"<dd>{r.skipped}</dd>" in out, fmt
    assert json.loads(render(r, "json"))["skipped"] == r.skipped


def test_declining_everything_is_nothing_to_judge_exit_2(tmp_path, capsys):
    impl = _write(tmp_path, "    raise NotImplementedError('not yet')\n")
    code = cli.main(["check", str(impl), "--examples", "12", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2 and report["verdict"] == "error"
    (row,) = report["failures"]
    assert row["kind"] == "nothing_to_judge" and "nothing to judge" in row["detail"] and report["skipped"] >= 12


def test_another_exception_is_still_a_failure(tmp_path, capsys):
    impl = _write(tmp_path, "    raise ValueError('bug')\n")
    code = cli.main(["check", str(impl), "--examples", "5", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["failures"][0]["kind"] == "exception" and report["skipped"] == 0
