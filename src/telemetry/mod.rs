//! Logs and traces. `RUST_LOG` picks log levels (default `info`, without PostgreSQL's notices:
//! every start would log "relation seaql_migrations already exists, skipping");
//! `FINQL_LOG_FORMAT=json` emits one JSON object per line for log shippers.
//!
//! Traces: `tracing` spans are bridged to OpenTelemetry (`tracing-opentelemetry`), always, so
//! that every request has a W3C trace id (`trace`: decided once at the HTTP edge, carried by
//! `x-request-id`, `extensions.traceId` and the `traceparent` sent upstream). Whether spans
//! leave the process is `export`'s business: over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, otherwise never — and then nothing is sampled
//! (unless the caller's `traceparent` says it sampled), so spans cost no more than ids.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{Config, LogFormat};

/// OTLP export of spans, when configured by the standard `OTEL_*` variables.
pub mod export;
/// The request's trace: its id from an incoming `traceparent` (or a new one), the request and
/// operation spans with the OpenTelemetry HTTP and GraphQL attributes, and the `traceparent`
/// injected into upstream calls.
pub mod trace;

const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// The tracer provider of the process, kept to flush its spans at shutdown.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber: logs and traces. Safe to call more than once (later calls
/// are no-ops), which lets tests start many servers in one process.
pub fn init(config: &Config) {
    install(Some(config.log_format));
}

/// Traces without logs: what the tests install when they are not asked to log (`TEST_LOG`), so
/// that trace ids and `traceparent` propagation work as in production while the output stays
/// quiet. Like [`init`], only the first call of the process counts.
pub fn init_quiet() {
    install(None);
}

fn install(logs: Option<LogFormat>) {
    if PROVIDER.get().is_some() {
        return;
    }
    let provider = export::provider();
    let tracer = provider.tracer("finql");
    // Spans at INFO and above become OpenTelemetry spans, whatever `RUST_LOG` says of logs:
    // trace ids must not depend on the log level.
    let traces = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(LevelFilter::INFO);
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let log_layer = logs.map(|format| match format {
        LogFormat::Json => fmt::layer().with_target(true).json().flatten_event(true).with_filter(filter()).boxed(),
        LogFormat::Text => fmt::layer().with_target(true).with_filter(filter()).boxed(),
    });
    if tracing_subscriber::registry().with(log_layer).with(traces).try_init().is_ok() {
        let _ = PROVIDER.set(provider);
    }
}

/// Exports the spans still buffered (bounded by the exporter's timeout): called once the
/// server has drained, before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        tracing::warn!(%err, "flushing spans at shutdown");
    }
}
