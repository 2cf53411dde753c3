"""GS1's EPCIS 2.0 JSON schema (ledger/epcis/schema/), as `epcis import` checks a document before mapping it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).parent / "schema" / "EPCIS-JSON-Schema.json"


@cache
def _validator() -> Any:
    # jsonschema-rs (Rust): about 400 times the rate of the pure-Python validator here, which checked 650 events a
    # second, a minute for a 32 MiB document. Formats are annotations, as draft 7 has them by default: GS1's own
    # examples name a document by a JSON-LD blank node (`_:document1`), which is not a URI.
    import jsonschema_rs  # here: only an import reads it

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema_rs.validator_for(schema, validate_formats=False)


def schema_problems(document: object, most: int = 20) -> list[str]:
    """The schema's objections, each naming where (`event 3: bizStep: ...` for an event), at most `most`."""
    problems = []
    for error in _validator().iter_errors(document):
        path = list(error.instance_path)
        where = ".".join(str(p) for p in path) or "the document"
        if len(path) >= 3 and path[:2] == ["epcisBody", "eventList"] and isinstance(path[2], int):
            where = f"event {path[2] + 1}" + (": " + ".".join(str(p) for p in path[3:]) if len(path) > 3 else "")
        problems.append(f"{where}: {error.message[:300]}")
        if len(problems) >= most:
            break
    return problems


__all__ = ["SCHEMA_FILE", "schema_problems"]
