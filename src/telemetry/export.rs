//! Where spans go. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, to an OpenTelemetry collector over OTLP, HTTP with protobuf bodies (`/v1/traces` under
//! the endpoint), in batches from a thread of the SDK's own: a slow or absent collector costs
//! the request path nothing but a full queue, whose spans are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`,
//! default 2048), never a wait. The standard variables apply as the SDK reads them:
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_TRACES_SAMPLER`(`_ARG`), `OTEL_SERVICE_NAME` (default `finql`),
//! `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! These are read from the process environment, not `Config`, because the SDK reads them there
//! itself: finql decides only whether to export at all.
//!
//! Without an endpoint, nothing is exported and nothing is sampled at the root (a caller's
//! sampled `traceparent` is still honoured, as W3C asks, and its spans are dropped at their
//! end): spans keep their ids, so trace ids and propagation work, and cost no more.

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider},
};

const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Whether the environment asks for spans to be exported.
pub fn configured() -> bool {
    ENDPOINT_VARS.iter().any(|var| std::env::var(var).is_ok_and(|value| !value.trim().is_empty()))
}

/// The process's tracer provider: exporting over OTLP when configured, else a sink.
pub(super) fn provider() -> SdkTracerProvider {
    if configured() {
        match otlp() {
            Ok(provider) => return provider,
            // Tracing is not worth refusing to start over; the log says why there are no spans.
            Err(err) => eprintln!("OTLP trace export disabled: {err}"),
        }
    }
    SdkTracerProvider::builder().with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff))).build()
}

fn otlp() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    // The exporter's reqwest client (like iTick's) is built with rustls and no provider of its
    // own: ring must be installed first, or building it panics. Idempotent.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build()?;
    let resource = if std::env::var("OTEL_SERVICE_NAME").is_ok() {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name("finql").build()
    };
    // The sampler is the SDK's default unless `OTEL_TRACES_SAMPLER` says otherwise:
    // parent-based, always on at the root.
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}
