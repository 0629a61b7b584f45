"""Judging gradients: what is right, how close is close enough, and what a wrong one looks like.

    references.py   the independent references, one calling convention (a Case in, RefOutput out)
    tolerance.py    the per-entry error model: tolerances and kink intervals for any dtype
    compare.py      entry-by-entry comparison into TensorVerdict records
    agreement.py    the one rule for two references agreeing; the cross-check of one case
    oracle.py       full mode's oracle: the references' answer, cross-checked before use
    shape.py        what the implementation returned, checked for count, dtype and shape
    full.py         full mode's judgement of one call (and of a train_step)
    fast.py         fast mode: random directions first, entries only where they fail
    rows.py         failure rows and the pictures they carry (heatmap, step curve)
    diagnosis.py    the label of a wrong gradient, only when the evidence is there
    signatures.py   the gradients of known-wrong delta rules (through the delta rule's h' hook)
    matching.py     a predicted gradient against the returned one, within tolerance
    hprime.py       activation_derivative: known wrong h', and h' families with fitted constants
    evidence.py     how many independent entries a set of gradient entries is
    factors.py      constant factors named in the loss conventions' terms (2, 1/B, B*n_L)

Nothing here runs user code, writes files or exits: records in, records out.
"""
