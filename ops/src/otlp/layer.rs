//! The tracing layer: turns each finished span that carries W3C ids into an
//! OpenTelemetry span with those very ids, and queues it for the exporter.

use core::fmt::Write as _;
use std::borrow::Cow;
use std::sync::mpsc::SyncSender;
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{Handle, DROPPED, SCOPE};

/// A span being recorded: its ids as the span's fields give them (hex), its
/// other fields as attributes.
#[derive(Debug)]
struct Open {
    name: &'static str,
    trace_id: String,
    span_id: String,
    parent_id: Option<String>,
    attributes: Vec<KeyValue>,
    outcome: Option<String>,
    start: SystemTime,
}

/// Collects a span's W3C ids and its other fields as attributes.
struct Fields<'a>(&'a mut Open);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.record(field, s.trim_matches('"').to_string());
    }
}

impl Fields<'_> {
    fn record(&mut self, field: &Field, value: String) {
        let span = &mut *self.0;
        match field.name() {
            "trace_id" => span.trace_id = value,
            "span_id" => span.span_id = value,
            "parent_id" => span.parent_id = Some(value),
            "outcome" => {
                span.attributes
                    .push(KeyValue::new("outcome", value.clone()));
                span.outcome = Some(value);
            }
            name => span.attributes.push(KeyValue::new(name.to_string(), value)),
        }
    }
}

impl Open {
    /// The span as exported, or `None` if its ids are not W3C hex.
    fn finish(self, end: SystemTime) -> Option<SpanData> {
        let trace_id = TraceId::from_hex(&self.trace_id).ok()?;
        let span_id = SpanId::from_hex(&self.span_id).ok()?;
        let parent_span_id = match &self.parent_id {
            Some(parent) => SpanId::from_hex(parent).ok()?,
            None => SpanId::INVALID,
        };
        let status = match self.outcome.as_deref() {
            Some(outcome) if outcome != "ok" => Status::error(outcome.to_string()),
            _ => Status::Ok,
        };
        // SERVER for a served call, INTERNAL for a run.
        let server = self.name == "call";
        Some(SpanData {
            span_context: SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id,
            // A served call's parent is the caller's span, from `traceparent`.
            parent_span_is_remote: server && self.parent_id.is_some(),
            span_kind: if server {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            name: Cow::Borrowed(self.name),
            start_time: self.start,
            end_time: end,
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: InstrumentationScope::builder(SCOPE).build(),
        })
    }
}

/// The layer that queues finished spans for the exporter's thread (see
/// [`super::layer`]).
pub struct OtlpLayer {
    pub(super) queue: SyncSender<SpanData>,
    pub(super) handle: Handle,
}

impl OtlpLayer {
    /// What flushes this layer's exporter.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let has_ids =
            attrs.fields().field("trace_id").is_some() && attrs.fields().field("span_id").is_some();
        let Some(span) = ctx.span(id).filter(|_| has_ids) else {
            return;
        };
        let mut open = Open {
            name: attrs.metadata().name(),
            trace_id: String::new(),
            span_id: String::new(),
            parent_id: None,
            attributes: Vec::new(),
            outcome: None,
            start: SystemTime::now(),
        };
        attrs.record(&mut Fields(&mut open));
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(open) = span.extensions_mut().get_mut::<Open>() {
                values.record(&mut Fields(open));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let Some(data) = open.finish(SystemTime::now()) else {
            return;
        };
        if self.queue.try_send(data).is_err() {
            metrics::counter!(DROPPED).increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(outcome: Option<&str>) -> Open {
        Open {
            name: "call",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_id: Some("1111111111111111".into()),
            attributes: vec![KeyValue::new("function", "i.f")],
            outcome: outcome.map(str::to_string),
            start: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn keeps_the_ids_the_span_carries() {
        let span = open(Some("ok")).finish(SystemTime::now()).unwrap();
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.span_context.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(span.parent_span_id.to_string(), "1111111111111111");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert!(span.parent_span_is_remote);
        assert_eq!(span.status, Status::Ok);
    }

    #[test]
    fn an_outcome_other_than_ok_is_an_error() {
        let span = open(Some("timeout")).finish(SystemTime::now()).unwrap();
        assert_eq!(span.status, Status::error("timeout"));
        let mut root = open(None);
        root.parent_id = None;
        let span = root.finish(SystemTime::now()).unwrap();
        assert_eq!(span.parent_span_id, SpanId::INVALID);
        assert!(!span.parent_span_is_remote);
        assert_eq!(span.status, Status::Ok);
    }

    #[test]
    fn a_span_without_hex_ids_is_not_sent() {
        let mut bad = open(None);
        bad.trace_id = "not-hex".into();
        assert!(bad.finish(SystemTime::now()).is_none());
    }
}
