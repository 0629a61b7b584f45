"""torch.autograd.gradcheck as a whole process, the anchor `backprop-verify check` is timed against
when both are run as commands (benchmarks/run.py runs this script as a subprocess):

    python benchmarks/torch_process.py CASE.json [--fast-mode] [--bug]

CASE.json is a case file (DESIGN section 5) of a tanh/identity MLP with the sse loss; it is read
with json and numpy only, so the process pays for what a torch user's script pays for: the
interpreter, numpy, torch, building the leaf tensors and gradcheck (benchmarks/anchors.py, the
same call the in-process rows time). Exit code 0 when gradcheck passes, 1 when it fails.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anchors  # noqa: E402
import numpy as np  # noqa: E402


def load(path):
    d = json.loads(Path(path).read_text())
    params = [(np.array(p["W"], dtype=np.float64), np.array(p["b"], dtype=np.float64)) for p in d["params"]]
    spec = SimpleNamespace(sizes=tuple(d["sizes"]), activations=tuple(d["activations"]), loss=d["loss"])
    return SimpleNamespace(spec=spec, params=params, X=np.array(d["X"], float), T=np.array(d["T"], float))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case")
    p.add_argument("--fast-mode", action="store_true", help="gradcheck(fast_mode=True)")
    p.add_argument("--bug", action="store_true", help="the planted bug: the loss's backward forgets the 2")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    case = load(args.case)
    if case.spec.loss != "sse" or set(case.spec.activations) - {"tanh", "identity"}:
        p.error("the torch subject is a tanh/identity MLP with the sse loss")
    return 0 if anchors.gradcheck(case, args.fast_mode, args.bug) == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
