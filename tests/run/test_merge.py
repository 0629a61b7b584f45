"""Shards and merge: a class of 40 generated submissions split 1/4 .. 4/4 and merged gives the
summary (and the reports) of one unsharded run; a merge of an incomplete class is refused."""

import json

import pytest
from classes import make_class

from verifier import cli
from verifier.errors import SpecError
from verifier.run.batch import shard
from verifier.run.merge import load_class

QUICK = ["--examples", "4", "--mode", "fast", "--quiet"]


def _check(capsys, tmp_path, *args):
    code = cli.main(["check", *args, *QUICK, "--cases-dir", str(tmp_path / "cases")])
    return code, capsys.readouterr().out


def _without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    return make_class(tmp_path_factory.mktemp("class"), 40)


def test_the_split_is_stable_whole_and_disjoint(klass):
    parts = [shard(klass, i, 4) for i in range(1, 5)]
    assert sorted(p for part in parts for p in part) == sorted(klass)
    assert all(parts) and len({p for part in parts for p in part}) == 40
    assert shard(list(reversed(klass)), 2, 4) == list(reversed(parts[1]))  # the order given does not matter
    late = shard(klass + ["late.py"], 3, 4)  # a submission added later moves no other
    assert [p for p in late if p != "late.py"] == parts[2]
    with pytest.raises(SpecError, match="1 <= I <= N"):
        shard(klass, 5, 4)


def test_four_shards_merged_give_the_unsharded_summary(klass, tmp_path, capsys):
    code, out = _check(capsys, tmp_path, *klass, "--format", "json", "--points", _rubric(tmp_path))
    whole = json.loads(out)
    verdicts = {s["verdict"] for s in whole["summary"]}
    assert verdicts == {"pass", "fail", "error"} and code == 2
    codes = []
    for i in range(1, 5):
        c, _ = _check(
            capsys,
            tmp_path,
            *klass,
            "--shard",
            f"{i}/4",
            "--format",
            "json",
            "--output",
            str(tmp_path / f"s{i}"),
            "--points",
            _rubric(tmp_path),
        )
        codes.append(c)
    assert max(codes) == code
    merged_code = cli.main(["merge", *(str(tmp_path / f"s{i}") for i in range(1, 5)), "--format", "json"])
    merged = json.loads(capsys.readouterr().out)
    assert merged_code == code and merged["verdict"] == whole["verdict"]
    assert _without_seconds(merged["summary"]) == _without_seconds(sorted(whole["summary"], key=lambda s: s["impl"]))
    assert [s["points"] for s in merged["summary"]] == [
        s["points"] for s in sorted(whole["summary"], key=lambda s: s["impl"])
    ]
    for fmt in ("text", "markdown"):  # the class summary in every format, from the shards' JSON
        assert cli.main(["merge", *(str(tmp_path / f"s{i}") for i in range(1, 5)), "--format", fmt]) == code
        assert "Summary: 40 implementations" in capsys.readouterr().out
    out_dir = tmp_path / "graded"
    cli.main(
        ["merge", *(str(tmp_path / f"s{i}") for i in range(1, 5)), "--format", "gradescope", "--output", str(out_dir)]
    )
    capsys.readouterr()
    assert len([p for p in out_dir.iterdir() if p.suffix == ".json"]) == 40


def _rubric(tmp_path):
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"gradients": 10, "misbehaviour": {"exception": 2}}))
    return str(path)


def test_a_missing_shard_or_a_shard_given_twice_is_refused(klass, tmp_path, capsys):
    few = klass[:8]
    for i in (1, 2):
        _check(capsys, tmp_path, *few, "--shard", f"{i}/2", "--format", "json", "--output", str(tmp_path / f"s{i}"))
    with pytest.raises(SpecError, match="shard\\(s\\) 2/2 missing"):
        load_class([str(tmp_path / "s1")])
    with pytest.raises(SpecError, match="reported twice"):
        load_class([str(tmp_path / "s1"), str(tmp_path / "s1"), str(tmp_path / "s2")])
    assert len(load_class([str(tmp_path / "s1"), str(tmp_path / "s2")])) == 8
    assert cli.main(["merge", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
