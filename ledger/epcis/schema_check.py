"""GS1's EPCIS 2.0 JSON schema (ledger/epcis/schema/), as `epcis import` checks a document before mapping it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).parent / "schema" / "EPCIS-JSON-Schema.json"


@cache
def _validator() -> Any:
    import jsonschema  # here: only an import reads it

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def schema_problems(document: object, most: int = 20) -> list[str]:
    """The schema's objections, each naming where (`event 3: bizStep: ...` for an event), at most `most`."""
    problems = []
    for error in _validator().iter_errors(document):
        path = list(error.absolute_path)
        where = ".".join(str(p) for p in path) or "the document"
        if len(path) >= 3 and path[:2] == ["epcisBody", "eventList"] and isinstance(path[2], int):
            where = f"event {path[2] + 1}" + (": " + ".".join(str(p) for p in path[3:]) if len(path) > 3 else "")
        problems.append(f"{where}: {error.message[:300]}")
        if len(problems) >= most:
            break
    return problems


__all__ = ["SCHEMA_FILE", "schema_problems"]
