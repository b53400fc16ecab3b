"""JSON Schemas of policy and scenario files, for editors and for checks outside the lab.

The schemas are generated from the dataclasses the loader builds (lab.policy.model,
lab.scenario.model), so an editor that reads ``docs/policy.schema.json`` -- every
shipped file starts with ``# yaml-language-server: $schema=../docs/policy.schema.json``
-- completes and checks exactly the keys the lab accepts. The committed copies in
docs/ are kept equal to these by a test; regenerate them after changing a model with
``python -m lab.schemas`` (or ``lab schema [--kind scenario] > file``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lab.config import json_schema
from lab.policy.model import Policy
from lab.scenario.model import Scenario

__all__ = ["SCHEMA_BASE", "policy_schema", "scenario_schema", "schema_text", "write_schemas"]

SCHEMA_BASE = "https://loyalty-lab.invalid/"


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file."""
    return json_schema(Policy, title="Loyalty Lab policy", id=SCHEMA_BASE + "policy.schema.json")


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file."""
    return json_schema(Scenario, title="Loyalty Lab scenario", id=SCHEMA_BASE + "scenario.schema.json")


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the committed files hold it: indented JSON, keys in generation order, a final newline."""
    return json.dumps(schema, indent=2) + "\n"  # byte for byte what `lab schema` prints


def write_schemas(folder: str | Path) -> list[Path]:
    """Write policy.schema.json and scenario.schema.json into `folder`; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, schema in (("policy.schema.json", policy_schema()), ("scenario.schema.json", scenario_schema())):
        path = folder / name
        path.write_text(schema_text(schema), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(written)
