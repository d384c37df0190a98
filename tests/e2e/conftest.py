"""Fixtures of the end-to-end tests: the running stack from the environment (as ``make
up`` writes it to ``.stack/env``; without ``GATEWAY_URL`` the tests FAIL with a message
naming ``make up``, they never skip) and the two experiment runs, each done once per
session and shared by the tests that read it."""

from __future__ import annotations

from typing import Any

import pytest

from .flow import AA_FLOW, AB_FLOW, FlowRun, Stack, run_flow, stack_from_env

_TIMINGS = pytest.StashKey[list[str]]()


def _report(config: pytest.Config, line: str) -> None:
    """Printed now (seen with ``-s``) and in the "e2e timings" section of the summary."""
    print(f"[e2e] {line}")
    config.stash.setdefault(_TIMINGS, []).append(line)


@pytest.fixture(scope="session")
def stack() -> Stack:
    return stack_from_env()


@pytest.fixture(scope="session")
async def ab_run(stack: Stack, request: pytest.FixtureRequest) -> FlowRun:
    run = await run_flow(stack, AB_FLOW)
    _report(request.config, run.timing_line())
    return run


@pytest.fixture(scope="session")
async def aa_run(stack: Stack, request: pytest.FixtureRequest) -> FlowRun:
    run = await run_flow(stack, AA_FLOW)
    _report(request.config, run.timing_line())
    return run


@pytest.fixture(params=["ab", "aa"])
def flow_run(request: pytest.FixtureRequest) -> FlowRun:
    """Either run, for the checks that hold for both."""
    run: FlowRun = request.getfixturevalue(f"{request.param}_run")
    return run


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_TIMINGS, [])
    if lines:
        terminalreporter.section("e2e timings")
        for line in lines:
            terminalreporter.write_line(line)
