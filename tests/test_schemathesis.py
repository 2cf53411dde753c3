"""Property-based run over the whole OpenAPI schema: no request, however odd, gets a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.settings import Settings
from tests.factory import make_world

_DIR = Path(tempfile.mkdtemp(prefix="chainproof-schemathesis-"))
_APP = create_app(Settings(data_dir=_DIR))
_WORLD = make_world(_APP.state.store)
_APP.state.store.append(_WORLD.journey("COF", "L1"))
_TOKEN = _APP.state.store.issue_token(_WORLD.admin.id)

schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_TOKEN}"}
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    # pages for shoppers answer with an HTML page (a 404 that says so plainly); the API with problem+json
    if response.status_code >= 400 and not case.operation.path.startswith(("/p/", "/01/")):
        content_type = response.headers["content-type"][0]  # schemathesis keeps every value of a header
        assert content_type.startswith("application/problem+json"), content_type
