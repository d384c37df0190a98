"""docker-compose.yml cannot run here; it must at least parse and reference only
files, modules and services that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _module_exists(module: str) -> bool:
    base = ROOT / module.replace(".", "/")
    return (
        base.with_suffix(".py").exists()
        or (base / "__init__.py").exists()
        or (base / "__main__.py").exists()
    )


def test_services_depend_only_on_defined_services_with_healthchecks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{dep} has no healthcheck but {name} waits for it"
                )


def test_referenced_files_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"


def test_python_commands_name_existing_modules(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        cmd = svc.get("command") or []
        for i, arg in enumerate(cmd):
            if arg == "-m" and i + 1 < len(cmd) and cmd[i + 1] != "uvicorn":
                assert _module_exists(cmd[i + 1]), f"{name}: module {cmd[i + 1]} does not exist"
            if ":" in arg and arg.startswith("services."):
                assert _module_exists(arg.split(":")[0]), f"{name}: app {arg} does not exist"


def test_every_service_with_metrics_is_scraped(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t.split(":")[0]
        for job in prom["scrape_configs"]
        for sc in job.get("static_configs", [])
        for t in sc["targets"]
    }
    for name, svc in compose["services"].items():
        if svc.get("labels", {}).get("abflow.metrics") == "true":
            assert name in targets, f"{name} exposes metrics but Prometheus does not scrape it"


def test_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    """No secret is committed: compose refuses to start without the API keys' hashes and
    the console's session secret (``${VAR:?message}``)."""
    services = compose["services"]
    for name in ("assignment", "analysis", "aggregator", "console"):
        env = services[name]["environment"]
        assert str(env["API_KEYS"]).startswith("${ABFLOW_API_KEYS:?"), name
    secret = services["console"]["environment"]["CONSOLE_SESSION_SECRET"]
    assert str(secret).startswith("${ABFLOW_CONSOLE_SESSION_SECRET:?")
