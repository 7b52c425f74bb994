//! A subscription as configured: `--subscribe 'subject=orders.>,handler=tcp://…'`.
//!
//! Keys (comma-separated `key=value`; values cannot contain commas):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `subject` | NATS subject, wildcards allowed | required |
//! | `handler` | where the component's `wasmcloud:messaging/handler` is served (target URL) | required |
//! | `queue` | core NATS queue group, so replicas share the messages | none |
//! | `max-in-flight` | messages being handled at once | 16 |
//! | `timeout` | deadline of each handler call | `--handler-timeout` |
//! | `jetstream` | JetStream mode: the stream's name, or `auto` to find it by subject | core NATS |
//! | `durable` | the durable consumer's name (JetStream) | required with `jetstream` |
//! | `max-deliver` | deliveries before a message goes to the dead-letter subject (JetStream) | 5 |
//! | `backoff` | first redelivery delay, doubled each time up to 1 min (JetStream) | 1s |
//! | `ack-wait` | redelivery after a crash (JetStream; more than the handler's deadline) | the deadline + 5s |
//! | `dead-letter` | where exhausted messages go (JetStream) | none: they are terminated |
//! | `namespace` | read `NAMESPACE.SUBJECT` and deliver it without the prefix (a reply-to under the prefix loses it too; one outside it is not delivered) | none |

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use transport::Endpoint;

/// Default `max-in-flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// Default `max-deliver`.
pub const DEFAULT_MAX_DELIVER: u64 = 5;
/// Default `backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Longest redelivery delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How much longer than the handler's timeout `ack-wait` is by default.
const ACK_WAIT_MARGIN: Duration = Duration::from_secs(5);

/// How messages are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Core NATS: at most once. A message published while nothing is
    /// subscribed, or lost with a crash, or refused by the handler, is gone.
    Core {
        /// Queue group shared by replicas.
        queue: Option<String>,
    },
    /// JetStream: at least once, through a durable pull consumer.
    JetStream(JetStream),
}

/// JetStream settings of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStream {
    /// The stream; `None` to find it by the subject.
    pub stream: Option<String>,
    /// The durable consumer's name.
    pub durable: String,
    /// Deliveries before dead-lettering.
    pub max_deliver: u64,
    /// First redelivery delay.
    pub backoff: Duration,
    /// Redelivery of an unacknowledged message (after a crash), as given;
    /// `None` for the handler's deadline plus a margin (see
    /// [`Subscription::ack_wait`]).
    pub ack_wait: Option<Duration>,
    /// Where exhausted messages go.
    pub dead_letter: Option<String>,
}

/// One subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The subject.
    pub subject: String,
    /// Where the handler is served.
    pub handler: Endpoint,
    /// Messages handled at once.
    pub max_in_flight: usize,
    /// Deadline of each handler call; `None` for `--handler-timeout`.
    pub timeout: Option<Duration>,
    /// Delivery mode.
    pub mode: Mode,
    /// The namespace whose subjects it reads (`namespace=`).
    pub namespace: Option<String>,
}

impl Subscription {
    /// The subject subscribed on NATS: under the namespace, if any.
    pub fn nats_subject(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.subject),
            None => self.subject.clone(),
        }
    }

    /// The deadline of each handler call, given the extension's default.
    pub fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }

    /// The JetStream consumer's `ack_wait` (`None` for core NATS): the one
    /// given, or the handler's real deadline (`timeout=`, else `default`,
    /// the extension's `--handler-timeout`) plus 5 s.
    ///
    /// # Errors
    ///
    /// An `ack-wait` at or below the handler's deadline, which would have a
    /// message redelivered while it is still being handled.
    pub fn ack_wait(&self, default: Duration) -> Result<Option<Duration>, String> {
        let Mode::JetStream(js) = &self.mode else {
            return Ok(None);
        };
        let deadline = self.timeout_or(default);
        let from = if self.timeout.is_some() {
            "`timeout`"
        } else {
            "--handler-timeout"
        };
        match js.ack_wait {
            Some(ack_wait) if ack_wait <= deadline => Err(format!(
                "subscription {self}: `ack-wait` ({ack_wait:?}) must be longer than the handler's deadline ({deadline:?}, {from}), or messages are redelivered while being handled"
            )),
            Some(ack_wait) => Ok(Some(ack_wait)),
            None => Ok(Some(deadline.saturating_add(ACK_WAIT_MARGIN))),
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Core { queue: None } => write!(f, "`{}` (core NATS)", self.nats_subject()),
            Mode::Core { queue: Some(q) } => {
                write!(
                    f,
                    "`{}` in queue group `{q}` (core NATS)",
                    self.nats_subject()
                )
            }
            Mode::JetStream(js) => {
                write!(
                    f,
                    "`{}` (JetStream durable `{}`)",
                    self.nats_subject(),
                    js.durable
                )
            }
        }
    }
}

/// Whether `subject` is a valid NATS subject to subscribe to (`wildcards`)
/// or to publish on: dot-separated non-empty tokens without whitespace;
/// `*` and `>` only as whole tokens, `>` only last.
pub fn check_subject(subject: &str, wildcards: bool) -> Result<(), String> {
    if subject.is_empty() {
        return Err("the subject is empty".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(format!("subject `{subject}` has an empty token"));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("subject `{subject}` contains whitespace"));
        }
        let wild = *token == "*" || *token == ">";
        if wild && !wildcards {
            return Err(format!(
                "subject `{subject}` has a wildcard, which cannot be published to"
            ));
        }
        if !wild && (token.contains('*') || token.contains('>')) {
            return Err(format!(
                "subject `{subject}`: `*` and `>` must be whole tokens"
            ));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err(format!("subject `{subject}`: `>` must be the last token"));
        }
    }
    Ok(())
}

/// `subject` without the prefix of `namespace` (as is without one); `None`
/// for a subject outside the namespace.
pub fn unscoped<'a>(namespace: Option<&str>, subject: &'a str) -> Option<&'a str> {
    match namespace {
        Some(ns) => subject.strip_prefix(ns)?.strip_prefix('.'),
        None => Some(subject),
    }
}

/// Whether `namespace` can scope NATS subjects: one token, so `a.b` cannot
/// reach into namespace `a`.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty()
        || namespace
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
    {
        return Err(format!(
            "namespace `{namespace}` cannot scope NATS subjects: it must be one token, without whitespace, `.`, `*` or `>`"
        ));
    }
    Ok(())
}

/// A name NATS accepts for a durable consumer or a queue group.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
    {
        return Err(format!(
            "{what} `{name}` must be non-empty, without whitespace, `.`, `*`, `>`, `/` or `\\`"
        ));
    }
    Ok(())
}

impl FromStr for Subscription {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let mut subject = None;
        let mut handler = None;
        let mut queue = None;
        let mut max_in_flight = DEFAULT_MAX_IN_FLIGHT;
        let mut timeout = None;
        let mut stream = None;
        let mut durable = None;
        let mut max_deliver = None;
        let mut backoff = None;
        let mut ack_wait = None;
        let mut dead_letter = None;
        let mut namespace = None;
        let duration =
            |key: &str, v: &str| transport::parse_duration(v).map_err(|e| format!("`{key}`: {e}"));
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not `key=value`"))?;
            let value = value.trim();
            match key.trim() {
                "subject" => {
                    check_subject(value, true)?;
                    subject = Some(value.to_string());
                }
                "handler" => {
                    handler = Some(
                        value
                            .parse::<Endpoint>()
                            .map_err(|e| format!("`handler`: {e}"))?,
                    );
                }
                "queue" => {
                    check_name("queue group", value)?;
                    queue = Some(value.to_string());
                }
                "max-in-flight" => {
                    max_in_flight = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("`max-in-flight` must be a number ≥ 1, not `{value}`"))?;
                }
                "timeout" => timeout = Some(duration("timeout", value)?),
                "jetstream" => {
                    if value != "auto" {
                        check_name("stream", value)?;
                        stream = Some(Some(value.to_string()));
                    } else {
                        stream = Some(None);
                    }
                }
                "durable" => {
                    check_name("durable", value)?;
                    durable = Some(value.to_string());
                }
                "max-deliver" => {
                    max_deliver = Some(
                        value
                            .parse::<u64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("`max-deliver` must be a number ≥ 1, not `{value}`"))?,
                    );
                }
                "backoff" => backoff = Some(duration("backoff", value)?),
                "ack-wait" => ack_wait = Some(duration("ack-wait", value)?),
                "namespace" => {
                    check_namespace(value)?;
                    namespace = Some(value.to_string());
                }
                "dead-letter" => {
                    check_subject(value, false).map_err(|e| format!("`dead-letter`: {e}"))?;
                    dead_letter = Some(value.to_string());
                }
                other => {
                    return Err(format!(
                        "unknown key `{other}` (subject, handler, queue, max-in-flight, timeout, jetstream, durable, max-deliver, backoff, ack-wait, dead-letter, namespace)"
                    ))
                }
            }
        }
        let subject = subject.ok_or("`subject` is required")?;
        let handler =
            handler.ok_or("`handler` is required (where the component's handler is served)")?;
        let mode = match stream {
            None => {
                let js_only = [
                    ("durable", durable.is_some()),
                    ("max-deliver", max_deliver.is_some()),
                    ("backoff", backoff.is_some()),
                    ("ack-wait", ack_wait.is_some()),
                    ("dead-letter", dead_letter.is_some()),
                ];
                if let Some((key, _)) = js_only.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "`{key}` applies to JetStream only: add `jetstream=STREAM` (or `jetstream=auto`)"
                    ));
                }
                Mode::Core { queue }
            }
            Some(stream) => {
                if queue.is_some() {
                    return Err(
                        "`queue` applies to core NATS only: JetStream replicas share the durable consumer".into(),
                    );
                }
                let durable = durable.ok_or("`durable` is required with `jetstream`")?;
                // Against a `timeout` given here, at once; against
                // --handler-timeout once the flags are read (`ack_wait`).
                if let (Some(ack_wait), Some(timeout)) = (ack_wait, timeout) {
                    if ack_wait <= timeout {
                        return Err(format!(
                            "`ack-wait` ({ack_wait:?}) must be longer than the handler's deadline ({timeout:?}, `timeout`), or messages are redelivered while being handled"
                        ));
                    }
                }
                Mode::JetStream(JetStream {
                    stream,
                    durable,
                    max_deliver: max_deliver.unwrap_or(DEFAULT_MAX_DELIVER),
                    backoff: backoff.unwrap_or(DEFAULT_BACKOFF),
                    ack_wait,
                    dead_letter,
                })
            }
        };
        Ok(Self {
            subject,
            handler,
            max_in_flight,
            timeout,
            mode,
            namespace,
        })
    }
}

/// The delay before redelivery number `delivered + 1`: `backoff` doubled per
/// delivery so far, at most [`MAX_BACKOFF`].
pub fn redelivery_delay(backoff: Duration, delivered: u64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_scopes_what_is_read_and_is_removed_from_what_is_delivered() {
        let s: Subscription = "subject=orders.>,handler=tcp://127.0.0.1:7000,namespace=red"
            .parse()
            .unwrap();
        assert_eq!(s.nats_subject(), "red.orders.>");
        let ns = s.namespace.as_deref();
        assert_eq!(unscoped(ns, "red.orders.1"), Some("orders.1"));
        assert_eq!(unscoped(ns, "red._INBOX.x"), Some("_INBOX.x"));
        assert_eq!(unscoped(ns, "_INBOX.x"), None);
        assert_eq!(unscoped(ns, "redder.x"), None);
        assert!(s.to_string().contains("`red.orders.>`"));
        let plain: Subscription = "subject=a,handler=tcp://h:1".parse().unwrap();
        assert_eq!(unscoped(plain.namespace.as_deref(), "a"), Some("a"));
        for bad in ["a.b", "*", ">", "a b", ""] {
            let err = format!("subject=a,handler=tcp://h:1,namespace={bad}")
                .parse::<Subscription>()
                .unwrap_err();
            assert!(err.contains("cannot scope NATS subjects"), "{bad}: {err}");
        }
    }

    #[test]
    fn core_and_jetstream_specs() {
        let s: Subscription =
            "subject=orders.*,handler=tcp://127.0.0.1:7000,queue=workers,max-in-flight=4"
                .parse()
                .unwrap();
        assert_eq!(s.subject, "orders.*");
        assert_eq!(s.max_in_flight, 4);
        assert_eq!(
            s.mode,
            Mode::Core {
                queue: Some("workers".into())
            }
        );
        let s: Subscription = "subject=jobs.>, handler=nats://127.0.0.1:4222/h, jetstream=JOBS, durable=jobs, max-deliver=3, backoff=200ms, dead-letter=jobs.dead, timeout=2s"
            .parse()
            .unwrap();
        // Its own `timeout`: the default ack-wait follows it, whatever
        // --handler-timeout says.
        assert_eq!(
            s.ack_wait(Duration::from_secs(60)),
            Ok(Some(Duration::from_secs(7)))
        );
        let Mode::JetStream(js) = s.mode else {
            panic!()
        };
        assert_eq!(js.stream.as_deref(), Some("JOBS"));
        assert_eq!(js.max_deliver, 3);
        assert_eq!(js.backoff, Duration::from_millis(200));
        assert_eq!(js.ack_wait, None);
        assert_eq!(js.dead_letter.as_deref(), Some("jobs.dead"));
        let s: Subscription = "subject=a,handler=tcp://h:1,jetstream=auto,durable=d"
            .parse()
            .unwrap();
        let Mode::JetStream(js) = s.mode else {
            panic!()
        };
        assert_eq!(js.stream, None);
        assert_eq!(js.max_deliver, DEFAULT_MAX_DELIVER);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |spec: &str| spec.parse::<Subscription>().unwrap_err();
        assert!(err("subject=orders..x,handler=tcp://h:1").contains("empty token"));
        assert!(err("subject=orders.>.x,handler=tcp://h:1").contains("last token"));
        assert!(err("subject=ord ers,handler=tcp://h:1").contains("whitespace"));
        assert!(err("subject=or*ders,handler=tcp://h:1").contains("whole tokens"));
        assert!(err("subject=a").contains("`handler` is required"));
        assert!(err("handler=tcp://h:1").contains("`subject` is required"));
        assert!(err("subject=a,handler=udp://h:1").contains("unsupported scheme"));
        assert!(err("subject=a,handler=tcp://h:1,max-in-flight=0").contains("max-in-flight"));
        assert!(err("subject=a,handler=tcp://h:1,durable=d").contains("JetStream only"));
        assert!(err("subject=a,handler=tcp://h:1,jetstream=S").contains("`durable` is required"));
        assert!(err("subject=a,handler=tcp://h:1,jetstream=S,durable=a.b").contains("durable"));
        assert!(
            err("subject=a,handler=tcp://h:1,jetstream=S,durable=d,queue=q")
                .contains("core NATS only")
        );
        assert!(
            err("subject=a,handler=tcp://h:1,jetstream=S,durable=d,dead-letter=x.*")
                .contains("wildcard")
        );
        assert!(
            err("subject=a,handler=tcp://h:1,jetstream=S,durable=d,timeout=10s,ack-wait=5s")
                .contains("longer than")
        );
        assert!(err("subject=a,handler=tcp://h:1,colour=red").contains("unknown key `colour`"));
        assert!(err("subject").contains("not `key=value`"));
    }

    /// The default ack-wait follows the handler's real deadline: with
    /// `--handler-timeout 60s` and no `timeout=`, a message being handled
    /// is not redelivered after 35 s (the built-in 30 s + 5 s) but after 65 s;
    /// an explicit ack-wait at or below that deadline is refused.
    #[test]
    fn ack_wait_follows_the_handler_timeout_flag() {
        let parse = |spec: &str| spec.parse::<Subscription>().unwrap();
        let secs = Duration::from_secs;
        let s = parse("subject=a,handler=tcp://h:1,jetstream=S,durable=d");
        assert_eq!(s.ack_wait(secs(60)), Ok(Some(secs(65))));
        assert_eq!(s.ack_wait(secs(30)), Ok(Some(secs(35))));
        let s = parse("subject=a,handler=tcp://h:1,jetstream=S,durable=d,ack-wait=45s");
        assert_eq!(s.ack_wait(secs(30)), Ok(Some(secs(45))));
        let refused = s.ack_wait(secs(60)).unwrap_err();
        assert!(
            refused.contains("`ack-wait` (45s) must be longer than the handler's deadline (60s, --handler-timeout)"),
            "{refused}"
        );
        assert!(
            s.ack_wait(secs(45)).is_err(),
            "at the deadline is refused too"
        );
        let core = parse("subject=a,handler=tcp://h:1");
        assert_eq!(core.ack_wait(secs(60)), Ok(None));
    }

    #[test]
    fn redelivery_backs_off_exponentially_up_to_a_minute() {
        let b = Duration::from_millis(100);
        assert_eq!(redelivery_delay(b, 1), b);
        assert_eq!(redelivery_delay(b, 2), b * 2);
        assert_eq!(redelivery_delay(b, 4), b * 8);
        assert_eq!(redelivery_delay(b, 1000), MAX_BACKOFF);
    }
}
