"""The gateway's template renderer (no nginx needed; routing is tested with real nginx
in tests/integration/client/test_gateway_routing.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def _gateway() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_main", ROOT / "deploy/gateway/main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gw = _gateway()


def test_only_abflow_placeholders_are_replaced() -> None:
    out = gw.render_template(
        "listen ${ABFLOW_X}; proxy_set_header Host $http_host; ${OTHER} $ABFLOW_X",
        {"ABFLOW_X": "1.2.3.4:80"},
    )
    assert out == "listen 1.2.3.4:80; proxy_set_header Host $http_host; ${OTHER} $ABFLOW_X"


def test_a_placeholder_without_value_is_an_error() -> None:
    with pytest.raises(gw.GatewayError, match="ABFLOW_B"):
        gw.render_template("${ABFLOW_A} ${ABFLOW_B}", {"ABFLOW_A": "x"})


def test_local_values_follow_the_stack_ports() -> None:
    values = gw.site_values({"ABFLOW_GATEWAY_PORT": "1", "ABFLOW_ANALYSIS_PORT": "3"})
    assert values == {
        "ABFLOW_GATEWAY_LISTEN": "127.0.0.1:1",
        "ABFLOW_ASSIGNMENT_UPSTREAM": "127.0.0.1:18001",
        "ABFLOW_ANALYSIS_UPSTREAM": "127.0.0.1:3",
        "ABFLOW_CONSOLE_UPSTREAM": "127.0.0.1:18004",
    }
    template = (ROOT / "deploy/gateway/abflow.conf.template").read_text()
    assert set(re.findall(r"\$\{(ABFLOW_[A-Z0-9_]+)\}", template)) == set(values)


def test_render_writes_everything_under_the_stack_dir(tmp_path: Path) -> None:
    conf = gw.render(tmp_path, {})
    text = conf.read_text()
    assert conf == tmp_path / "gateway" / "nginx.conf"
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for path in re.findall(r"\s(/\S+?);", line):
            assert path.startswith(str(tmp_path)), line
    site = (tmp_path / "gateway" / "abflow.conf").read_text()
    assert "${" not in site and "listen 127.0.0.1:18080;" in site
