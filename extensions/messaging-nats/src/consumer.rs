//! `wasmcloud:messaging/consumer`: what components call to publish and ask.

use core::time::Duration;

use bytes::Bytes;
use sdk::messaging::{consumer, BrokerMessage};
use sdk::CallerContext;
use tracing::debug;

use crate::subscription::check_subject;

/// Publishes and requests on the application's NATS.
#[derive(Clone)]
pub struct Consumer {
    nats: async_nats::Client,
    max_request_timeout: Duration,
}

impl Consumer {
    /// A consumer on `nats`; requests wait at most `max_request_timeout`.
    pub fn new(nats: async_nats::Client, max_request_timeout: Duration) -> Self {
        Self {
            nats,
            max_request_timeout,
        }
    }
}

impl consumer::Handler<CallerContext> for Consumer {
    async fn publish(
        &self,
        cx: CallerContext,
        msg: BrokerMessage,
    ) -> anyhow::Result<Result<(), String>> {
        if let Err(why) = check_subject(&msg.subject, false) {
            return Ok(Err(why));
        }
        if let Some(reply) = &msg.reply_to {
            if let Err(why) = check_subject(reply, false) {
                return Ok(Err(format!("reply-to: {why}")));
            }
        }
        debug!(subject = msg.subject, component = cx.component(), "publish");
        // The message carries the publishing call's trace, so its handler
        // continues it.
        let mut headers = async_nats::HeaderMap::new();
        if let Some(trace) = cx.trace() {
            headers.insert(sdk::headers::TRACEPARENT, trace.to_string().as_str());
        }
        let published = match msg.reply_to {
            Some(reply) => {
                self.nats
                    .publish_with_reply_and_headers(msg.subject.clone(), reply, headers, msg.body)
                    .await
            }
            None => {
                self.nats
                    .publish_with_headers(msg.subject.clone(), headers, msg.body)
                    .await
            }
        };
        if let Err(err) = published {
            sdk::backend_error("nats", "publish");
            return Ok(Err(format!("publishing on `{}`: {err}", msg.subject)));
        }
        // Answer once the server has it: a failure shows here, not never.
        Ok(self.nats.flush().await.map_err(|err| {
            sdk::backend_error("nats", "publish");
            format!("publishing on `{}`: {err}", msg.subject)
        }))
    }

    async fn request(
        &self,
        cx: CallerContext,
        subject: String,
        body: Bytes,
        timeout_ms: u32,
    ) -> anyhow::Result<Result<BrokerMessage, String>> {
        if let Err(why) = check_subject(&subject, false) {
            return Ok(Err(why));
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        if timeout.is_zero() || timeout > self.max_request_timeout {
            return Ok(Err(format!(
                "timeout-ms {timeout_ms} must be between 1 and {} (--max-request-timeout)",
                self.max_request_timeout.as_millis()
            )));
        }
        debug!(subject, component = cx.component(), "request");
        let request = async_nats::Request::new()
            .payload(body)
            .timeout(Some(timeout));
        match self.nats.send_request(subject.clone(), request).await {
            Ok(reply) => Ok(Ok(BrokerMessage {
                subject: reply.subject.to_string(),
                body: reply.payload,
                reply_to: reply.reply.map(|r| r.to_string()),
            })),
            Err(err) => Ok(Err(match err.kind() {
                async_nats::RequestErrorKind::TimedOut => {
                    format!("request on `{subject}`: no reply within {timeout_ms} ms")
                }
                async_nats::RequestErrorKind::NoResponders => {
                    format!("request on `{subject}`: no responders")
                }
                _ => {
                    sdk::backend_error("nats", "request");
                    format!("request on `{subject}`: {err}")
                }
            })),
        }
    }
}
