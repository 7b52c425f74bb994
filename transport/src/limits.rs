//! Limits checked before anything a peer declares is allocated.

use core::time::Duration;

/// The longest duration any flag or manifest field accepts: ten years. Longer
/// values are refused at parse time so deadline arithmetic cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What a peer may declare and how long it may take. Every listener and every
/// client result decoder applies them; a peer that exceeds one loses its
/// connection (or its call, over NATS) with one log line naming the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes in one frame (TCP, Unix, WebSocket) and in a call's
    /// synchronous parameters or results on any transport. Default 16 MiB.
    pub max_frame: u32,
    /// Most elements in a frame's path (nesting of async values). Default 16.
    pub max_path_depth: u32,
    /// Most bytes in an instance or function name, a header name or value. Default 1 KiB.
    pub max_name: u32,
    /// Most elements in any list of a synchronous value, and the largest
    /// index in a path. Default 1 Mi.
    pub max_list: u32,
    /// Deepest nesting of a value's types. Default 64.
    pub max_value_depth: u32,
    /// How long a caller may take from its first byte to the end of a call's
    /// header and synchronous parameters. Default 10 s.
    pub header_timeout: Duration,
    /// How long a pooled connection may sit idle between calls. Default 60 s.
    pub idle_timeout: Duration,
    /// How long a streamed value may make no progress. Default 30 s.
    pub stream_idle_timeout: Duration,
    /// Most connections a listener keeps open at once. Default 16384.
    pub max_connections: usize,
}

impl Limits {
    /// The defaults documented on each field.
    pub const DEFAULT: Self = Self {
        max_frame: 16 << 20,
        max_path_depth: 16,
        max_name: 1024,
        max_list: 1 << 20,
        max_value_depth: 64,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        stream_idle_timeout: Duration::from_secs(30),
        max_connections: 16384,
    };

    /// The limits that bound a value's scan.
    pub fn value(&self) -> crate::schema::ValueLimits {
        crate::schema::ValueLimits {
            max_list: self.max_list,
            max_bytes: self.max_frame,
            max_depth: self.max_value_depth,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses a duration such as `10s` or `1m 30s`, refusing zero and anything
/// above [`MAX_DURATION`].
///
/// # Errors
///
/// A message naming what is wrong with `s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_humantime(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` must be greater than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "`{s}` is longer than the maximum of {} (10 years)",
            MAX_DURATION.as_secs()
        ) + " seconds");
    }
    Ok(d)
}

fn parse_humantime(s: &str) -> Result<Duration, String> {
    // A small parser for `<number><unit>` groups, so the transport crate does
    // not depend on humantime unless the clap feature is on.
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("a duration is empty (expected e.g. 10s, 500ms, 1m 30s)".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{s}` is not a duration (expected e.g. 10s, 500ms, 1m 30s)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` has a number too large for a duration"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let nanos_per: u128 = match unit {
            "ns" | "nsec" => 1,
            "us" | "usec" | "µs" => 1_000,
            "ms" | "msec" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            "" => {
                return Err(format!(
                    "`{s}` needs a unit (ns, us, ms, s, m, h, d), e.g. 10s"
                ))
            }
            other => {
                return Err(format!(
                    "`{s}` has unknown unit `{other}` (expected ns, us, ms, s, m, h or d)"
                ))
            }
        };
        let nanos = u128::from(number)
            .checked_mul(nanos_per)
            .ok_or_else(|| format!("`{s}` is too long for a duration"))?;
        let add = Duration::from_nanos(
            u64::try_from(nanos).map_err(|_| format!("`{s}` is too long for a duration"))?,
        );
        total = total
            .checked_add(add)
            .ok_or_else(|| format!("`{s}` is too long for a duration"))?;
    }
    Ok(total)
}

/// The limits as flags with environment variables, for a binary's clap
/// config (`#[command(flatten)]`).
#[cfg(feature = "clap")]
#[derive(Clone, Debug, clap::Args)]
pub struct LimitArgs {
    /// Most bytes in one frame and in a call's synchronous parameters or results.
    #[arg(long, env = "WRPC_MAX_FRAME", default_value_t = Limits::DEFAULT.max_frame)]
    pub max_frame: u32,
    /// Most elements in a frame's path.
    #[arg(long, env = "WRPC_MAX_PATH_DEPTH", default_value_t = Limits::DEFAULT.max_path_depth)]
    pub max_path_depth: u32,
    /// Most bytes in an instance or function name, header name or header value.
    #[arg(long, env = "WRPC_MAX_NAME", default_value_t = Limits::DEFAULT.max_name)]
    pub max_name: u32,
    /// Most elements in a list of a synchronous value.
    #[arg(long, env = "WRPC_MAX_LIST", default_value_t = Limits::DEFAULT.max_list)]
    pub max_list: u32,
    /// Time from a caller's first byte to the end of its call header and synchronous parameters.
    #[arg(long, env = "WRPC_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a pooled connection may sit idle between calls.
    #[arg(long, env = "WRPC_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How long a streamed value may make no progress.
    #[arg(long, env = "WRPC_STREAM_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub stream_idle_timeout: Duration,
    /// Most connections each listener keeps open at once.
    #[arg(long, env = "WRPC_MAX_CONNECTIONS", default_value_t = Limits::DEFAULT.max_connections)]
    pub max_connections: usize,
}

#[cfg(feature = "clap")]
impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame: self.max_frame,
            max_path_depth: self.max_path_depth,
            max_name: self.max_name,
            max_list: self.max_list,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            stream_idle_timeout: self.stream_idle_timeout,
            max_connections: self.max_connections,
            ..Limits::DEFAULT
        }
    }
}

/// The limits a client applies to results, as flags with environment variables.
#[cfg(feature = "clap")]
#[derive(Clone, Debug, clap::Args)]
pub struct ClientLimitArgs {
    /// Most bytes in one frame and in a call's synchronous results.
    #[arg(long = "wrpc-max-frame", env = "WRPC_MAX_FRAME", default_value_t = Limits::DEFAULT.max_frame)]
    pub max_frame: u32,
    /// Most elements in a frame's path.
    #[arg(long = "wrpc-max-path-depth", env = "WRPC_MAX_PATH_DEPTH", default_value_t = Limits::DEFAULT.max_path_depth)]
    pub max_path_depth: u32,
    /// Most bytes in a name in a reply.
    #[arg(long = "wrpc-max-name", env = "WRPC_MAX_NAME", default_value_t = Limits::DEFAULT.max_name)]
    pub max_name: u32,
    /// Most elements in a list of a synchronous result.
    #[arg(long = "wrpc-max-list", env = "WRPC_MAX_LIST", default_value_t = Limits::DEFAULT.max_list)]
    pub max_list: u32,
}

#[cfg(feature = "clap")]
impl ClientLimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame: self.max_frame,
            max_path_depth: self.max_path_depth,
            max_name: self.max_name,
            max_list: self.max_list,
            ..Limits::DEFAULT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bounds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("3 fortnights")
            .unwrap_err()
            .contains("unknown unit `fortnights`"));
        let huge = parse_duration("18446744073709551615s").unwrap_err();
        assert!(
            huge.contains("maximum") || huge.contains("too long"),
            "{huge}"
        );
        assert!(parse_duration("11d").is_ok());
        assert!(parse_duration("4000d").unwrap_err().contains("maximum"));
    }
}
