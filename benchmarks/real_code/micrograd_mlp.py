"""micrograd (karpathy, micrograd/nn.py and engine.py): an MLP of scalar `Value`s, ReLU on every
hidden layer and a linear output (`Layer(..., nonlin=i != len(nouts) - 1)`), its gradient by
`Value.backward()`. micrograd has no loss of its own; this one is written as its demo notebook
(demo.ipynb, `loss()`) writes it: the data loss averaged over the batch,
`sum(losses) * (1.0 / len(losses))`, plus `alpha * sum((p*p for p in model.parameters()))`, the
biases included and not divided by the batch (the demo's max-margin loss is squared error here).
"""

import numpy as np
from micrograd.nn import MLP

ALPHA = 1e-4  # the demo's alpha
LOSS = {
    "kind": "squared",
    "over_outputs": "sum",
    "over_batch": "mean",  # data_loss = sum(losses) * (1.0 / len(losses))
    "l2": ALPHA,
    "l2_factor": 1,  # reg_loss = alpha * sum(p*p ...)
    "l2_over_batch": "none",
    "l2_bias": True,  # model.parameters() is every neuron's w + [b]
}
SUPPORTED_ACTIVATIONS = ("relu", "identity")


def supports(spec):  # relu hidden layers, a linear output, and no hidden layer of one unit:
    # Layer.__call__ returns out[0] bare when len(out) == 1, and the next Neuron zips over it
    return set(spec.activations[:-1]) <= {"relu"} and spec.activations[-1] == "identity" and 1 not in spec.sizes[1:-1]


def gradients(params, X, T, spec):
    net = MLP(spec.sizes[0], list(spec.sizes[1:]))
    [setattr(p, "data", v) for p, v in zip(net.parameters(), [v for Wb in params for v in np.column_stack(Wb).flat])]
    J = sum(((np.atleast_1d(net(list(x))) - t) ** 2).sum() for x, t in zip(X, T)) / len(X)  # one output is bare
    (J := J + ALPHA * sum(p * p for p in net.parameters())).backward()
    return J.data, [([[w.grad for w in n.w] for n in L.neurons], [n.b.grad for n in L.neurons]) for L in net.layers]
