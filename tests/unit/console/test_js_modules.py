"""The console's pure JavaScript modules (formatting, lifecycle, API client, forest-plot
and bar-chart geometry), unit-tested with node's built-in test runner: one pytest test
per ``js/*.test.mjs`` file, so ``make test-unit`` runs them too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
JS_TESTS = sorted((HERE / "js").glob("*.test.mjs"))


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail(
            "node not found: the console's JavaScript unit tests need Node.js 18+ "
            "(apt-get install nodejs)",
            pytrace=False,
        )
    return node


def test_every_module_with_logic_has_tests() -> None:
    names = {p.name.removesuffix(".test.mjs") for p in JS_TESTS}
    assert names >= {"format", "plots", "api", "lifecycle"}


@pytest.mark.parametrize("path", JS_TESTS, ids=[p.name for p in JS_TESTS])
def test_js_module(path: Path) -> None:
    res = subprocess.run(
        [_node(), "--test", "--test-reporter=tap", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if res.returncode != 0:
        failing = [line for line in res.stdout.splitlines() if line.lstrip().startswith("not ok")]
        pytest.fail(
            f"{path.name}: {len(failing)} failing\n" + res.stdout[-6000:] + res.stderr[-2000:],
            pytrace=False,
        )
