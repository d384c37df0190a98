"""Fixtures of the end-to-end tests: the running stack from the environment (as ``make
up`` writes it to ``.stack/env``; without ``GATEWAY_URL`` the tests FAIL with a message
naming ``make up``, they never skip) and the two experiment runs, each done once per
session and shared by the tests that read it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from tests.conftest import summarise

from .flow import AA_FLOW, AB_FLOW, FlowRun, Stack, run_flow, stack_from_env


def _report(config: pytest.Config, line: str) -> None:
    summarise(config, "e2e timings", line)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """For the tests' own measurements: a line of the "e2e timings" summary."""
    return partial(_report, request.config)


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
