"""`--otlp-endpoint` exports: an incident's spans reach a local OTLP/HTTP receiver, decoded."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.builders import PARENT_ID, TRACE_ID, Feed, approved_incident
from warden.telemetry.tracing import TracingListener, build_tracer_provider

if TYPE_CHECKING:
    from collections.abc import Iterator


class Collector:
    """A minimal OTLP/HTTP receiver: decodes each protobuf export request it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                outer.requests.append((self.path, request))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()
    c.server.server_close()


def test_an_incident_trace_is_exported_over_otlp_http(collector: Collector) -> None:
    setup = build_tracer_provider(collector.url)  # a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
    assert setup.exporting, setup.message
    assert f"to {collector.url}/v1/traces" in setup.message
    listener = TracingListener(setup.provider)
    approved_incident(Feed(listener))
    listener.close()
    setup.provider.shutdown()  # flushes the batch
    assert {path for path, _ in collector.requests} == {"/v1/traces"}
    spans = [
        span
        for _, request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {s.name for s in spans}
    assert {"incident payments", "agent.propose", "policy.evaluate", "verify"} <= names
    (root,) = [s for s in spans if s.name == "incident payments"]
    assert root.trace_id.hex() == TRACE_ID
    assert root.parent_span_id.hex() == PARENT_ID
    service = {
        a.key: a.value.string_value
        for _, r in collector.requests
        for rs in r.resource_spans
        for a in rs.resource.attributes
    }
    assert service["service.name"] == "warden"
