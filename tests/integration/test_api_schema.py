"""Schemathesis from the OpenAPI document: whatever fits the schema, the API never answers 5xx.

Cases are generated from the application's own document and sent to a real server, as an
admin (so every route is reached past the guard).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from .api_world import World, make_world, openapi_document

if TYPE_CHECKING:
    from collections.abc import Iterator

# The live stream never ends by design; the role tests and test_api cover it.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/stream")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = make_world(tmp_path_factory.mktemp("schema"))
    world.waiting()
    world.ctx.store.quarantine("webhook", "not JSON", "{oops", "2026-11-25T12:00:00Z")
    world.harness.warden.checkpointer.checkpoint()
    server = world.serve()
    yield world, server.url
    world.close()


def test_the_document_describes_every_operation_with_its_permission() -> None:
    document = openapi_document()
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len(operations) >= 25
    assert all("x-warden-permission" in op for op in operations)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_the_api_fail(served: tuple[World, str], case: schemathesis.Case) -> None:
    world, url = served
    response = case.call(base_url=url, headers=world.token("root"), timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500
