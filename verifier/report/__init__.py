"""Reports: result records laid out for people and programs. Formats are data: FORMATS maps a
format name to its renderer and its file extension; `render` is the one way in.

    common.py    what every format shares: the wording of a failure, tables, plain data
    text.py      the terminal (default)          markdown.py  a CI summary or PR comment
    json.py      DESIGN section 6, for programs  junit.py     JUnit XML for CI servers
    html.py      one self-contained page with a heatmap and a step curve per failure
    gradescope.py   an autograder's results.json   prairielearn.py  an external grader's results
    graders.py   the points items both lay out     student.py   what `--audience student` sees

A format's module is imported when a report is first rendered in it: a run pays for the
format it writes (an XML library, the HTML page's code), not for all seven.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

from ..errors import SpecError


class Format(NamedTuple):
    render: Callable[[object], str]
    extension: str


def _renderer(module: str) -> Callable[[object], str]:
    """`render` of verifier/report/MODULE.py, imported on the first call."""

    def render(result) -> str:
        return importlib.import_module(f".{module}", __name__).render(result)

    render.__qualname__ = f"{module}.render"
    return render


FORMATS: dict[str, Format] = {
    name: Format(_renderer(module), extension)
    for name, module, extension in (
        ("text", "text", "txt"),
        ("markdown", "markdown", "md"),
        ("json", "json", "json"),
        ("junit", "junit", "xml"),
        ("html", "html", "html"),
        ("gradescope", "gradescope", "json"),
        ("prairielearn", "prairielearn", "json"),
    )
}


def render(result, fmt: str) -> str:
    """`result` (a CheckResult, CrosscheckResult or GradResult) as a document in format `fmt`."""
    if fmt not in FORMATS:
        raise SpecError(f"format {fmt!r} is not available; use one of {', '.join(FORMATS)}")
    return FORMATS[fmt].render(result)
