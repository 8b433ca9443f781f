"""OpenTelemetry traces: a server span per RPC, the database statements as its children, and each mail
send as a span of its own.

The RPC spans come from OpenTelemetry's own gRPC instrumentation (the gRPC semantic conventions; it
continues a caller's W3C `traceparent`, so a BFF's trace runs on through Foothills), the statement
spans from its SQLAlchemy instrumentation. Tracing is off unless the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; the SDK reads the other
standard variables itself (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, ...).
Each server gets its own provider rather than the global one, so that tests can run several.
"""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.sqlalchemy import __version__ as sqlalchemy_instrumentation_version
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine

NO_TRACING = trace.NoOpTracerProvider()


def exporting_provider(service_name: str) -> TracerProvider:
    """A provider that batches spans to the OTLP endpoint the standard variables name."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # only when tracing

    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over our default name
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def close(provider: trace.TracerProvider) -> None:
    """Sends the spans an exporting provider still holds in its batch, and stops it."""
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def trace_statements(engine: AsyncEngine, provider: trace.TracerProvider) -> None:
    """A child span for each statement `engine` runs inside a traced call."""
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_instrumentation_version,
                              provider)
    usage = metrics.NoOpMeterProvider().get_meter(__name__).create_up_down_counter("unused")  # our pool gauges say it
    EngineTracer(tracer, engine.sync_engine, usage)


def current_ids() -> tuple[str, str]:
    """The active span's trace and span ids in their W3C hex form; empty strings outside a sampled span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
