"""Write the JSON Schema files in ``schemas/json/`` from the code: ``python -m schemas.generate``.

``--check`` exits 1 (and names the files) when the files on disk differ from what the code generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.chain import chain_schema
from schemas.codec import json_schema
from schemas.envelope import ENVELOPE_FIELDS
from schemas.events import EVENT_TYPES, SCHEMA_VERSION
from schemas.request_signing import attestation_schema

__all__ = ["JSON_DIR", "expected_files", "main"]

JSON_DIR = Path(__file__).parent / "json"
_ID = "https://ai-memory.dev/schemas/"


def _envelope_schema() -> dict[str, Any]:
    props: dict[str, Any] = {name: {"type": "string"} for name in ENVELOPE_FIELDS}
    props["schema_version"] = {"type": "integer", "minimum": 1}
    props["payload"] = {"type": "object"}
    props["ts"] = {"type": "string", "format": "date-time"}
    props["attestation"] = attestation_schema()
    props["chain"] = chain_schema()
    props["cause"] = {"type": "string", "description": "the event id of the decision this event carries out: "
                      "applied only when that decision was applied before it in log order"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _ID + "envelope.schema.json",
        "title": "ai-memory event envelope (the signed body)",
        "description": "Canonical JSON (sorted keys, no whitespace, UTF-8). The Ed25519 signature over these "
                       "exact bytes travels beside them (a column, a NATS or Kafka header).",
        "type": "object",
        "properties": props,
        "required": list(ENVELOPE_FIELDS),
        "additionalProperties": False,
    }


def expected_files() -> dict[str, str]:
    files = {"envelope.schema.json": _envelope_schema()}
    for event_type, cls in sorted(EVENT_TYPES.items()):
        schema = json_schema(cls)
        files[f"{event_type}.schema.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": _ID + f"{event_type}.schema.json",
            "title": f"payload of {event_type} (schema version {SCHEMA_VERSION})",
            "description": (cls.__doc__ or "").strip().replace("\n    ", " "),
            **schema,
        }
    return {name: json.dumps(body, indent=2, sort_keys=False) + "\n" for name, body in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    expected = expected_files()
    if args.check:
        on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.json")}
        bad = sorted(n for n in set(expected) | set(on_disk) if expected.get(n) != on_disk.get(n))
        for name in bad:
            print(f"out of date: schemas/json/{name}", file=sys.stderr)
        return 1 if bad else 0
    JSON_DIR.mkdir(exist_ok=True)
    for old in JSON_DIR.glob("*.json"):
        if old.name not in expected:
            old.unlink()
    for name, text in expected.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(expected)} files to {JSON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
