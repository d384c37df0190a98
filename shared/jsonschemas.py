"""Generate the JSON Schemas of the event contracts into ``schemas/events/``.

``python -m shared.jsonschemas --write`` rewrites them; without ``--write`` it exits
with status 1 when a file on disk differs from the models (a test does the same).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from shared.events import AssignmentConfig, DeadLetter, ExecutionEvent, ExposureEvent

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "events"

MODELS: dict[str, type[BaseModel]] = {
    "execution_event.v1.json": ExecutionEvent,
    "exposure_event.v1.json": ExposureEvent,
    "assignment_config.v1.json": AssignmentConfig,
    "dead_letter.v1.json": DeadLetter,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def drifted() -> list[str]:
    """File names whose content differs from what the models generate."""
    out = []
    for name, model in MODELS.items():
        path = SCHEMA_DIR / name
        if not path.exists() or path.read_text() != render(model):
            out.append(name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.write:
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for name, model in MODELS.items():
            (SCHEMA_DIR / name).write_text(render(model))
        return 0
    stale = drifted()
    if stale:
        sys.stderr.write(f"stale JSON Schemas: {', '.join(stale)}; run `make schemas`\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
