"""Explore, then shrink: the one search that check and crosscheck both run.

`explore` judges every generated case and keeps every result; `shrink` asks Hypothesis for the
smallest case on which a predicate still finds something. A harness exception raised while
judging propagates out of both; only a failure that does not replay (flaky code) is not found,
and a judge that raises Stop ends either search with what it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Stop(Exception):
    """Raised by a judge to end the search with what it has (the case it raised on is not kept)."""


class _Found(Exception):
    """Raised inside a Hypothesis run to report a case that shows what is searched for."""

    def __init__(self, case, found):
        super().__init__("found")
        self.case, self.found = case, found


def explore(
    strategy,
    judge: Callable[[Any], Any],
    *,
    examples: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[Any, Any]]:
    """[(case, judge(case))] for `examples` cases drawn from `strategy`, reproducibly from `seed`;
    fewer when `judge` raises Stop."""
    from .. import strategies  # Hypothesis: imported by a run that draws, not by one case file

    runs: list[tuple[Any, Any]] = []

    def body(case):
        runs.append((case, judge(case)))
        if progress:
            progress(len(runs), examples)

    exc = strategies.explore(strategy, body, examples=examples, seed=seed, shrink=False)
    if exc is not None and not _stopped(exc) and not strategies.is_unsatisfiable(exc):
        raise exc
    return runs


def shrink(strategy, find: Callable[[Any], Any], *, examples: int, seed: int) -> tuple[Any, Any] | None:
    """(case, find(case)) for the smallest case on which `find` returns something truthy, or None
    when nothing is found again (code whose answer changes from call to call) or `find` raised Stop."""
    from .. import strategies  # as in explore

    smallest: list[tuple[Any, Any]] = []  # the last case found: Hypothesis only tries smaller ones after it

    def body(case):
        found = find(case)
        if found:
            smallest[:] = [(case, found)]
            raise _Found(case, found)

    exc = strategies.explore(strategy, body, examples=examples, seed=seed, shrink=True)
    if isinstance(exc, _Found):
        return exc.case, exc.found
    if exc is not None and _stopped(exc):  # stopped while shrinking: the smallest case so far
        return smallest[0] if smallest else None
    if exc is None or strategies.is_flaky(exc):
        return None
    raise exc


def _stopped(exc: BaseException) -> bool:
    """A Stop, or a group of them (what Hypothesis raises when a failure does not replay)."""
    inner = getattr(exc, "exceptions", None)
    return isinstance(exc, Stop) or (isinstance(inner, tuple) and bool(inner) and all(_stopped(e) for e in inner))
