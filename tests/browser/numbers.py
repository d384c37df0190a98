"""Reading the numbers the console shows back into floats (to compare with the API's)."""

from __future__ import annotations

import re

_MS = {"ms": 1.0, "s": 1000.0, "min": 60000.0, "h": 3600000.0}


def number(text: str) -> float:
    """The first number of ``text``: "1,234" -> 1234; "−3.1 pp" -> -3.1."""
    m = re.search(r"[-−+]?\d[\d,]*(?:\.\d+)?", text)
    if not m:
        raise ValueError(f"no number in {text!r}")
    return float(m.group(0).replace(",", "").replace("−", "-"))


def percent(text: str) -> float:
    """ "79.4%" -> 0.794."""
    assert text.strip().endswith("%"), text
    return number(text) / 100.0


def milliseconds(text: str) -> float:
    """ "850 ms" -> 850; "1.53 s" -> 1530; "2.1 min" -> 126000."""
    m = re.fullmatch(r"\s*(-?[\d.,]+)\s*(ms|s|min|h)\s*", text)
    assert m, f"not a duration: {text!r}"
    return float(m.group(1).replace(",", "")) * _MS[m.group(2)]


def duration_tolerance(ms: float) -> float:
    """Half a unit of the last digit the console shows for ``ms``."""
    a = abs(ms)
    if a < 10:
        return 0.005
    if a < 1000:
        return 0.5
    if a < 10000:
        return 5.0
    if a < 60000:
        return 50.0
    return 3000.0
