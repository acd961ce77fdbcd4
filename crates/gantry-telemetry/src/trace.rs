//! Traces: an OTLP exporter behind `tracing`, and the W3C `traceparent`
//! strings that carry a run's trace from the API through Redis jobs to the
//! coordinators and workers (SPEC section 6).
//!
//! With no OTLP endpoint configured the layer is absent, spans carry no
//! OpenTelemetry context, [`traceparent`] returns `None` and nothing
//! downstream creates trace-only spans (`node.dispatch`): tracing off
//! costs nothing on the enqueue path.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the OTLP span exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Where and as what to export spans.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// Base URL of an OTLP/HTTP receiver, e.g. `http://collector:4318`;
    /// spans go to `{endpoint}/v1/traces` as protobuf.
    pub endpoint: String,
    /// `service.name` of this process, e.g. `gantry-worker`.
    pub service_name: String,
}

/// Owns the tracer provider; dropping it flushes the spans still batched.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// A `tracing` layer exporting spans over OTLP/HTTP in batches, and the
/// guard that flushes them at exit.
pub fn otlp_layer<S>(
    config: &OtlpConfig,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        Tracing,
    ),
    Error,
>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let endpoint = format!("{}/v1/traces", config.endpoint.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|source| Error::Exporter { endpoint, source })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("gantry");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok((layer, Tracing { provider }))
}

/// The W3C `traceparent` of `span`, or `None` when it has no recorded
/// OpenTelemetry context (tracing is off, or the span is disabled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Make `span` a child of the span `traceparent` names. A malformed value
/// is ignored: the span then starts a trace of its own.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
