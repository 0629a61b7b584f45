"""JSON (DESIGN section 6): the plain data of a result record, for programs."""

from __future__ import annotations

import json

from .common import to_json


def render(result) -> str:
    return json.dumps(to_json(result), indent=2) + "\n"
