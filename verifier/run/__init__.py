"""Running: the commands' work, from a configuration to a result record.

    check.py       one implementation: explore generated cases in its sandbox, shrink, diagnose
    diagnose.py    the minimal case's diagnosis, on a larger case around it when it is too small
    explore.py     the one explore-then-shrink search (Hypothesis), for check and crosscheck
    crosscheck.py  every reference against every other
    grad.py        every reference on one case
    batch.py       a class of implementations, one job each, in parallel with spawn
    gate.py        the CI gate's baseline: record, load, compare

Results are records; nothing here prints, renders or chooses an exit code.
"""
