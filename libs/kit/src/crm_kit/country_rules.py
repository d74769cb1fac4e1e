"""Rules that differ per country, shipped as JSON beside the service that applies them and chosen
by a setting: a shipped country's code (IL, IR) or a file of the same shape for another country.
One way to find and read them; each service checks the shape of its own (customers' consent rules,
notifications' advertising rules) and refuses to start with a file that cannot be right."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class UnreadableRules(ValueError):
    """Neither a shipped country's code nor a readable JSON file."""


def read(name: str, shipped: Mapping[str, Path], what: str) -> tuple[Any, str]:
    """The JSON of the rules `name` names (a code of `shipped`, any case, or a path) and where
    they came from; UnreadableRules naming `what` and the codes shipped otherwise."""
    path = shipped.get(name.upper(), Path(name))
    try:
        return json.loads(path.read_text(encoding="utf-8")), str(path)
    except (OSError, ValueError) as exc:
        codes = ", ".join(shipped)
        raise UnreadableRules(
            f"{what} {name!r}: neither a shipped country ({codes}) nor a readable JSON file: {exc}"
        ) from exc
