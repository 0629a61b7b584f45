"""--scheduler: a class run as tasks on a Dask cluster (a LocalCluster of 2 worker processes
here) gives the verdicts of --jobs 2; a worker killed mid-run costs only the submission it held
(retried on the other worker, or an error row), nothing else."""

import os
import signal
import threading
import time

import pytest
from classes import kind_of, make_class

distributed = pytest.importorskip("distributed")

from verifier.records import RunConfig  # noqa: E402
from verifier.run.batch import run_batch  # noqa: E402
from verifier.run.cluster import run_on_cluster  # noqa: E402

CONFIG = RunConfig(examples=4, mode="fast", cases_dir=None)
SLOW = """import time
import numpy as np


def gradients(params, X, T, spec):
    time.sleep(1.5)
    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes whose temp dir is this module's: a worker killed mid-call (below)
    leaves its sandbox child's work directory behind on its machine, as any killed process
    leaves its temp files; here that machine's temp dir is the test's own, removed with it."""
    tmp = tmp_path_factory.mktemp("workers-tmp")
    os.chmod(tmp, 0o755)  # run as root, the children's own uids enter their directories
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env={"TMPDIR": str(tmp)},
    ) as c:
        yield c


def _verdicts(results):
    return [(r.implementation, r.verdict, [f.kind for f in r.failures][:1]) for r in results]


def test_the_cluster_gives_the_verdicts_of_jobs_2(cluster, tmp_path):
    klass = make_class(tmp_path / "class", 8)
    on_cluster = run_on_cluster(klass, CONFIG, cluster.scheduler_address)
    assert _verdicts(on_cluster) == _verdicts(run_batch(klass, CONFIG, jobs=2))
    assert {kind_of(r.implementation): r.verdict for r in on_cluster} == {
        "correct": "pass",
        "sign": "fail",
        "scale": "fail",
        "crash": "fail",
        "syntax": "error",
    }


def test_a_worker_killed_mid_run_costs_only_its_submission(cluster, tmp_path):
    klass = make_class(tmp_path / "class", 6)
    slow = tmp_path / "class" / "slow.py"
    slow.write_text(SLOW)
    impls = klass[:3] + [str(slow)] + klass[3:]
    expected = _verdicts(run_batch(klass, CONFIG, jobs=1))
    killed = []

    def kill_the_slow_tasks_worker():
        with distributed.Client(cluster.scheduler_address, timeout="20s") as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for worker, keys in watcher.processing().items():
                    if "check-3" in keys:
                        time.sleep(0.5)  # inside the slow call
                        pid = watcher.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)  # a worker process this test's cluster started
                        killed.append(worker)
                        break
                time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_slow_tasks_worker)
    watcher.start()
    results = run_on_cluster(impls, CONFIG, cluster.scheduler_address)
    watcher.join()
    assert killed, "the slow submission's worker was never seen running it"
    slow_result = results[3]
    others = results[:3] + results[4:]
    assert _verdicts(others) == expected  # nothing else changed
    # its own row: retried on a live worker (the zero gradients are wrong), or an error row
    assert slow_result.implementation == str(slow)
    assert slow_result.verdict == "fail" or (
        slow_result.verdict == "error" and "worker" in slow_result.failures[0].detail
    )


def test_no_scheduler_there_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from verifier import cli
    from verifier.run import cluster as cluster_module

    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", "2s")

    code = cli.main(["check", *make_class(tmp_path, 2), "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert code == 2 and "no Dask scheduler answered there" in capsys.readouterr().err
