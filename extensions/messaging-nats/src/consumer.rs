//! `wasmcloud:messaging/consumer`: what components call to publish and ask.

use core::time::Duration;

use bytes::Bytes;
use sdk::messaging::{consumer, BrokerMessage};
use sdk::CallerContext;
use tracing::debug;

use crate::subscription::{check_namespace, check_subject};

/// Publishes and requests on the application's NATS.
#[derive(Clone)]
pub struct Consumer {
    nats: async_nats::Client,
    max_request_timeout: Duration,
    isolate_namespaces: bool,
}

impl Consumer {
    /// A consumer on `nats`; requests wait at most `max_request_timeout`;
    /// with `isolate_namespaces` every subject is put under the caller's
    /// namespace.
    pub fn new(
        nats: async_nats::Client,
        max_request_timeout: Duration,
        isolate_namespaces: bool,
    ) -> Self {
        Self {
            nats,
            max_request_timeout,
            isolate_namespaces,
        }
    }

    /// The caller's namespace when namespaces are kept apart, else `None`.
    fn namespace<'a>(&self, cx: &'a CallerContext) -> Result<Option<&'a str>, String> {
        if !self.isolate_namespaces {
            return Ok(None);
        }
        let ns = cx
            .namespace()
            .ok_or("the call has no namespace, and this extension keeps namespaces apart")?;
        check_namespace(ns)?;
        Ok(Some(ns))
    }

    /// `subject` as it goes out on NATS: under the namespace, if any.
    fn scoped(namespace: Option<&str>, subject: &str) -> String {
        match namespace {
            Some(ns) => format!("{ns}.{subject}"),
            None => subject.to_string(),
        }
    }

    /// A request on `subject` (as the caller named it) under `namespace`,
    /// whose reply comes to an inbox under `namespace` too, so a responder
    /// in that namespace answers it with its own `publish`.
    async fn scoped_request(
        &self,
        namespace: &str,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<async_nats::Message, String> {
        let inbox = format!("{namespace}.{}", self.nats.new_inbox());
        let failed = |err: &dyn std::fmt::Display| {
            sdk::backend_error("nats", "request");
            format!("request on `{subject}`: {err}")
        };
        let mut replies = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| failed(&e))?;
        self.nats
            .publish_with_reply(Self::scoped(Some(namespace), subject), inbox, body)
            .await
            .map_err(|e| failed(&e))?;
        self.nats.flush().await.map_err(|e| failed(&e))?;
        match tokio::time::timeout(timeout, futures::StreamExt::next(&mut replies)).await {
            Ok(Some(reply)) if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
                Err(format!("request on `{subject}`: no responders"))
            }
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(failed(&"the connection closed")),
            Err(_) => Err(format!(
                "request on `{subject}`: no reply within {} ms",
                timeout.as_millis()
            )),
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
        let namespace = match self.namespace(&cx) {
            Ok(ns) => ns,
            Err(why) => return Ok(Err(why)),
        };
        let subject = Self::scoped(namespace, &msg.subject);
        let reply_to = msg.reply_to.as_deref().map(|r| Self::scoped(namespace, r));
        debug!(subject, component = cx.component(), "publish");
        // The message carries the publishing call's trace, so its handler
        // continues it.
        let mut headers = async_nats::HeaderMap::new();
        if let Some(trace) = cx.trace() {
            headers.insert(sdk::headers::TRACEPARENT, trace.to_string().as_str());
        }
        let published = match reply_to {
            Some(reply) => {
                self.nats
                    .publish_with_reply_and_headers(subject.clone(), reply, headers, msg.body)
                    .await
            }
            None => {
                self.nats
                    .publish_with_headers(subject.clone(), headers, msg.body)
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
        let namespace = match self.namespace(&cx) {
            Ok(ns) => ns,
            Err(why) => return Ok(Err(why)),
        };
        debug!(subject, component = cx.component(), "request");
        if let Some(ns) = namespace {
            return Ok(self
                .scoped_request(ns, &subject, body, timeout)
                .await
                .map(|reply| BrokerMessage {
                    // The inbox, as the caller would name it.
                    subject: reply
                        .subject
                        .strip_prefix(&format!("{ns}."))
                        .unwrap_or(&reply.subject)
                        .to_string(),
                    body: reply.payload,
                    reply_to: None,
                }));
        }
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
