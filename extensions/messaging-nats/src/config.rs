//! The extension's own flags, beside the sdk's.

use core::time::Duration;

use transport::Endpoint;

use crate::subscription::Subscription;

/// Where messages are published and subscribed, and what to deliver where.
#[derive(Clone, Debug, clap::Args)]
pub struct MessagingArgs {
    /// The application's NATS, where components publish and subscriptions
    /// read: nats://[USER:PASS@|TOKEN@]HOST[:PORT][,HOST[:PORT]…][?creds=FILE|nkey=FILE|token_env=VAR|password_env=VAR|tls_ca=FILE|tls_cert=FILE|tls_key=FILE] (default: the --nats-url servers).
    #[arg(long, env = "MESSAGING_NATS_URL", hide_env_values = true)]
    pub messaging_url: Option<Endpoint>,

    /// A subscription delivered to a component's handler: `subject=S,handler=URL[,queue=G][,max-in-flight=N][,timeout=D]` for core NATS (at most once), plus `jetstream=STREAM|auto,durable=NAME[,max-deliver=N][,backoff=D][,ack-wait=D][,dead-letter=SUBJECT]` for JetStream (at least once). Repeatable; env: `;`-separated.
    #[arg(long = "subscribe", env = "MESSAGING_SUBSCRIBE", value_delimiter = ';')]
    pub subscriptions: Vec<Subscription>,

    /// Default deadline of each handler call.
    #[arg(long, env = "MESSAGING_HANDLER_TIMEOUT", default_value = "30s", value_parser = transport::parse_duration)]
    pub handler_timeout: Duration,

    /// Keep namespaces apart: a component in namespace N publishes and
    /// requests on `N.SUBJECT` (its reply-to becomes `N.REPLY`, its replies
    /// come to an inbox under `N.`); a subscription's `namespace=N` reads
    /// `N.SUBJECT` and delivers it without the prefix. Every listener must
    /// name where a call's namespace comes from (namespace=, namespace_from=, uid_namespace=).
    #[arg(long, env = "MESSAGING_ISOLATE_NAMESPACES")]
    pub isolate_namespaces: bool,

    /// Longest `consumer.request` timeout a component may ask for.
    #[arg(long, env = "MESSAGING_MAX_REQUEST_TIMEOUT", default_value = "60s", value_parser = transport::parse_duration)]
    pub max_request_timeout: Duration,
}

impl MessagingArgs {
    /// Checks what depends on several flags: each JetStream subscription's
    /// `ack-wait` against its handler's real deadline.
    ///
    /// # Errors
    ///
    /// The first subscription whose `ack-wait` is too short, in one line.
    pub fn check(&self) -> Result<(), sdk::ConfigError> {
        for sub in &self.subscriptions {
            sub.ack_wait(self.handler_timeout)
                .map_err(sdk::ConfigError::Flag)?;
        }
        Ok(())
    }

    /// The application's NATS: `--messaging-url`, else the servers and
    /// credentials of `--nats-url`.
    ///
    /// # Errors
    ///
    /// Neither is a NATS URL.
    pub fn nats(
        &self,
        serve: &sdk::ServeArgs,
    ) -> Result<transport::endpoint::NatsEndpoint, String> {
        match self.messaging_url.as_ref().or(serve.nats_url.as_ref()) {
            Some(Endpoint::Nats(nats)) => Ok(nats.clone()),
            Some(other) => Err(format!("--messaging-url `{other}` is not a nats:// URL")),
            None => Err("no NATS to publish on: pass --messaging-url (or --nats-url)".into()),
        }
    }
}
