"""The service keeps its own contract (issue 24 item 17): schemathesis generates requests
from the service's /openapi.json, valid and invalid, and every answer must be one the
description documents, in the documented shape (every error the service's JSON error),
and never a 500. Bounded: a fixed number of examples per operation."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("starlette")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hashmatch.lists import ParsedList  # noqa: E402
from hashmatch.matching.matcher import MatchConfig  # noqa: E402
from hashmatch.service.app import ServiceOptions, create_app  # noqa: E402
from hashmatch.service.live import LiveMatcher  # noqa: E402
from hashmatch.service.openapi import OPENAPI  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    store = Store.create(root / "store")
    store = store.import_list(ParsedList.from_hashes("pdq", ["f" * 64, "0" * 64]), name="known", version="1")
    store.import_list(ParsedList.from_hashes("md5", ["1" * 32]), name="exact", version="1")
    live = LiveMatcher(str(root / "store"), MatchConfig(), workers=1, timeout_s=10, memory_limit=None)
    live.refresh()  # loaded now: the ASGI client schemathesis uses does not run the lifespan
    app = create_app(live, ServiceOptions(max_body=1 << 20))

    async def without_lifespan(scope, receive, send):
        """The app, its lifespan (start and stop the live matcher) acknowledged but not run:
        the ASGI client opens one per request, and the service here lives for the module."""
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    yield schemathesis.openapi.from_asgi("/openapi.json", without_lifespan)
    live.stop()


# Negative cases need something to break: parameters, a body or credentials.
OPERATIONS = [(path, method, mode) for path, methods in OPENAPI["paths"].items() for method, op in methods.items()
              for mode in ("positive", "negative")
              if mode == "positive" or {"parameters", "requestBody", "security"} & set(op)]


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS,
                         ids=[f"{m.upper()} {p} {mode}" for p, m, mode in OPERATIONS])
def test_every_answer_is_one_the_description_documents(api_schema, path, method, mode):
    """Valid requests (positive) and requests that break the description (negative)."""
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

    @given(case=strategy)
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        response = case.call()
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
        case.validate_response(response, checks=(status_code_conformance, content_type_conformance,
                                                  response_schema_conformance))

    check()
