"""Reports: result records laid out for people and programs. Formats are data: FORMATS maps a
format name to its renderer and its file extension; `render` is the one way in.

    common.py    what every format shares: the wording of a failure, tables, plain data
    text.py      the terminal (default)          markdown.py  a CI summary or PR comment
    json.py      DESIGN section 6, for programs  junit.py     JUnit XML for CI servers
    html.py      one self-contained page with a heatmap and a step curve per failure
    gradescope.py   an autograder's results.json   prairielearn.py  an external grader's results
    graders.py   the points items both lay out     student.py   what `--audience student` sees
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..errors import SpecError
from . import gradescope, html, json, junit, markdown, prairielearn, text


class Format(NamedTuple):
    render: Callable[[object], str]
    extension: str


FORMATS: dict[str, Format] = {
    "text": Format(text.render, "txt"),
    "markdown": Format(markdown.render, "md"),
    "json": Format(json.render, "json"),
    "junit": Format(junit.render, "xml"),
    "html": Format(html.render, "html"),
    "gradescope": Format(gradescope.render, "json"),
    "prairielearn": Format(prairielearn.render, "json"),
}


def render(result, fmt: str) -> str:
    """`result` (a CheckResult, CrosscheckResult or GradResult) as a document in format `fmt`."""
    if fmt not in FORMATS:
        raise SpecError(f"format {fmt!r} is not available; use one of {', '.join(FORMATS)}")
    return FORMATS[fmt].render(result)
