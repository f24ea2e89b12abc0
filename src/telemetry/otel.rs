//! Traces over OTLP/HTTP (cargo feature `otel`): the spans of a request, its plan, each LLM step
//! and each peer call, exported in batches to `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) with the standard OpenTelemetry variables. Without an
//! endpoint nothing is exported and no exporter thread runs.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The variables that name where traces go.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The tracing layer that turns spans into OpenTelemetry spans, when an endpoint is set.
pub(crate) fn layer<S>()
-> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if !ENDPOINT_VARS
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()))
    {
        return None;
    }
    // JSON over HTTP: the endpoint and headers come from the standard variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .build()
        .ok()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("plangate").build())
        .build();
    let tracer = provider.tracer("plangate");
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports what is still buffered (call before the process exits).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}
