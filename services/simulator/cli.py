"""Command line of the simulator: ``python -m services.simulator --schema KEY ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Sequence

from pydantic import ValidationError

from shared.client import AbflowClient, ClientSettings, SchemaFallback

from .behaviour import DEFAULT_BEHAVIOURS, BehaviourSet
from .progress import ProgressBar
from .runner import SimulationConfig, SimulationResult, run_simulation
from .summary import format_summary

__all__ = ["main", "parse_args"]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = ClientSettings()
    p = argparse.ArgumentParser(
        prog="python -m services.simulator",
        description=(
            "A fleet of synthetic orchestrators: assign units to a schema's versions over "
            "HTTP and emit execution events to Kafka with a configurable true behaviour "
            "per variant."
        ),
    )
    p.add_argument("--schema", help="schema key or id to assign")
    p.add_argument("--executions", type=int, default=20_000, help="how many (default 20000)")
    p.add_argument("--rate", type=float, default=0.0, help="executions/s overall; 0 = max")
    p.add_argument("--concurrency", type=int, default=32, help="parallel orchestrators")
    p.add_argument("--units", type=int, default=None, help="distinct unit ids to cycle")
    p.add_argument("--unit-prefix", default="unit")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-id", default=None, help="execution id prefix (default random)")
    p.add_argument("--behaviour-file", default=None, help="JSON behaviour file")
    p.add_argument(
        "--print-behaviour", action="store_true", help="print the built-in behaviour and exit"
    )
    p.add_argument("--assignment-url", default=env.assignment_url, help="or ASSIGNMENT_URL")
    p.add_argument(
        "--kafka-bootstrap", default=env.kafka_bootstrap_servers, help="or KAFKA_BOOTSTRAP_SERVERS"
    )
    p.add_argument("--topic-prefix", default=env.topic_prefix, help="or TOPIC_PREFIX")
    p.add_argument(
        "--api-key",
        default=env.client_api_key,
        help="key with scope client; better from the environment: CLIENT_API_KEY",
    )
    p.add_argument("--timeout", type=float, default=env.assign_timeout, help="assign attempt (s)")
    p.add_argument("--fallback-schema-id", type=uuid.UUID, default=None)
    p.add_argument("--fallback-version", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    if not args.print_behaviour and not args.schema:
        p.error("--schema is required")
    return args


async def _run(args: argparse.Namespace, behaviours: BehaviourSet) -> SimulationResult:
    client = AbflowClient(
        args.assignment_url,
        kafka_bootstrap=args.kafka_bootstrap,
        topic_prefix=args.topic_prefix,
        timeout=args.timeout,
        api_key=args.api_key or None,
    )
    if args.fallback_schema_id is not None:
        client.set_fallback(
            args.schema,
            SchemaFallback(schema_id=args.fallback_schema_id, schema_version=args.fallback_version),
        )
    config = SimulationConfig(
        schema=args.schema,
        executions=args.executions,
        rate=args.rate,
        concurrency=args.concurrency,
        seed=args.seed,
        units=args.units,
        unit_prefix=args.unit_prefix,
        run_id=args.run_id,
    )
    bar = ProgressBar(args.executions, "simulate", enabled=not args.no_progress)
    async with client:
        return await run_simulation(client, config, behaviours, progress=bar)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_behaviour:
        _out(DEFAULT_BEHAVIOURS.model_dump_json(indent=2))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        behaviours = (
            BehaviourSet.from_file(args.behaviour_file)
            if args.behaviour_file
            else DEFAULT_BEHAVIOURS
        )
    except (OSError, ValidationError) as exc:
        _err(f"error: behaviour file {args.behaviour_file}: {exc}")
        return 2
    try:
        result = asyncio.run(_run(args, behaviours))
    except ValueError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        _out(json.dumps(result.to_dict(), indent=2))
    else:
        _out(format_summary(result, behaviours, args.schema))
    return 0 if result.failed == 0 else 1
