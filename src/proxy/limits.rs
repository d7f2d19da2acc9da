//! The `[limits]` table of `proxy.toml`: each limit's key, type, default
//! and lower bound written once, in [`limits!`]; the file's struct, the
//! validated [`Limits`], their defaults and the bound checks all come from
//! that one row. A value below its bound is refused with its `file:line`.
//! The rules that span several limits are in [`Limits::spanning_rules`].

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// One row per limit: `field ("key"): Kind = default, at least bound;`
/// `Count` is a number of things (`usize`), `Seconds` a [`Duration`] whose
/// key ends in `_s`. An optional `because "…"` says why the bound is what
/// it is, in the refusal.
macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident ($key:literal): $kind:ident = $default:expr, at least $min:literal
            $(, because $why:literal)?;
    )*) => {
        /// The table as written; every value spanned, for the refusal's line.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawLimits {
            $(#[serde(rename = $key)] $field: Option<Spanned<u64>>,)*
        }

        /// Abuse limits. Defaults are chosen for a proxy in front of Jupyter:
        /// headers carry cookies (Jupyter's `_xsrf` and auth cookies) but
        /// never need 16 KiB; API bodies are tiny JSON.
        #[derive(Debug, Clone)]
        pub struct Limits {
            $($(#[doc = $doc])* pub $field: limit_type!($kind),)*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits {
                    $($field: limit_value!($kind, $default),)*
                }
            }
        }

        impl RawLimits {
            /// The limits the file gives, each at least its bound (else the
            /// error `at` makes for its offset), the others their defaults.
            pub(super) fn resolve<E>(
                self,
                at: impl Fn(usize, String) -> E,
            ) -> Result<Limits, E> {
                let defaults = Limits::default();
                let mut limits = Limits {
                    $($field: match self.$field {
                        None => defaults.$field,
                        Some(value) => {
                            // `lt`, not `<`: for a bound of 0 the
                            // comparison is always false, which `<` warns of.
                            if value.get_ref().lt(&$min) {
                                let why: &str = concat!($(" (", $why, ")")?);
                                return Err(at(
                                    value.span().start,
                                    format!(
                                        "`limits.{}` must be at least {}{why}",
                                        $key, $min
                                    ),
                                ));
                            }
                            limit_value!($kind, *value.get_ref())
                        }
                    },)*
                };
                limits.spanning_rules();
                Ok(limits)
            }
        }
    };
}

macro_rules! limit_type {
    (Count) => {
        usize
    };
    (Seconds) => {
        Duration
    };
}

macro_rules! limit_value {
    (Count, $n:expr) => {
        usize::try_from($n).unwrap_or(usize::MAX)
    };
    (Seconds, $n:expr) => {
        Duration::from_secs($n)
    };
}

limits! {
    /// Request line and headers; more gets 431.
    max_header_bytes ("max_header_bytes"): Count = 16 * 1024, at least 8192,
        because "hyper's HTTP/1 read buffer cannot be smaller than 8 KiB";
    /// API JSON bodies; more gets 413.
    max_api_body_bytes ("max_api_body_bytes"): Count = 16 * 1024, at least 1;
    /// Also bounds the TLS handshake, the wait for a first byte and each
    /// HTTP/2 header block.
    header_read_timeout ("header_read_timeout_s"): Seconds = 10, at least 1;
    /// An HTTP connection with no request for this long is closed (HTTP/2:
    /// no open stream). Upgraded WebSockets are exempt: an idle kernel is
    /// normal.
    idle_timeout ("idle_timeout_s"): Seconds = 300, at least 1;
    /// Connections plus WebSocket tunnels the public listener takes.
    max_connections ("max_connections"): Count = 4096, at least 1;
    /// Connections plus WebSocket tunnels one client address may hold.
    max_connections_per_address ("max_connections_per_address"): Count = 256, at least 1;
    /// Connections the API listener (`api_addr`) takes, apart from the
    /// public listener's `max_connections`.
    max_api_connections ("max_api_connections"): Count = 256, at least 1;
    /// Live sessions one user may have at once.
    max_sessions_per_user ("max_sessions_per_user"): Count = 20, at least 1;
    /// Live sessions created from one client address (a login node serves
    /// many users, so this is well above the per-user one).
    max_sessions_per_client ("max_sessions_per_client"): Count = 1000, at least 1;
    /// Live sessions in all.
    max_sessions ("max_sessions"): Count = 20_000, at least 1;
    /// Requests one session may have waiting on its backend at once.
    max_requests_per_session ("max_requests_per_session"): Count = 256, at least 1;
    /// WebSocket tunnels one session may have open (kernels, terminals).
    max_websockets_per_session ("max_websockets_per_session"): Count = 128, at least 1;
    /// The longest `?wait=ready` long-poll (0: answer at once).
    long_poll_max ("long_poll_max_s"): Seconds = 60, at least 0;
    /// After SIGTERM, time for requests in flight to finish.
    shutdown_grace ("shutdown_grace_s"): Seconds = 30, at least 0;
}

impl Limits {
    /// The rules between limits, applied after each is within its bound.
    fn spanning_rules(&mut self) {
        // A long-poll moves no bytes while it waits: keep it inside the idle
        // timeout, or the connection would be cut before the answer.
        self.long_poll_max = self
            .long_poll_max
            .min(self.idle_timeout.saturating_sub(Duration::from_secs(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Limits, String> {
        let raw: RawLimits = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.resolve(|offset, message| format!("{offset}: {message}"))
    }

    #[test]
    fn every_count_below_its_bound_is_refused_where_it_is_written() {
        for key in [
            "max_api_body_bytes",
            "max_connections",
            "max_connections_per_address",
            "max_api_connections",
            "max_sessions_per_user",
            "max_sessions_per_client",
            "max_sessions",
            "max_requests_per_session",
            "max_websockets_per_session",
            "header_read_timeout_s",
            "idle_timeout_s",
        ] {
            let text = format!("{key} = 0\n");
            assert_eq!(
                resolve(&text).unwrap_err(),
                format!("{}: `limits.{key}` must be at least 1", key.len() + 3),
            );
        }
        assert_eq!(
            resolve("\nmax_header_bytes = 8191").unwrap_err(),
            "20: `limits.max_header_bytes` must be at least 8192 (hyper's HTTP/1 \
             read buffer cannot be smaller than 8 KiB)"
        );
        let zero = resolve("long_poll_max_s = 0\nshutdown_grace_s = 0").unwrap();
        assert_eq!(
            (zero.long_poll_max, zero.shutdown_grace),
            (Duration::ZERO, Duration::ZERO)
        );
    }

    #[test]
    fn defaults_and_the_long_poll_inside_the_idle_timeout() {
        let limits = resolve("").unwrap();
        assert_eq!(limits.max_header_bytes, 16 * 1024);
        assert_eq!(limits.idle_timeout, Duration::from_secs(300));
        assert_eq!(limits.long_poll_max, Duration::from_secs(60));
        let short = resolve("idle_timeout_s = 30\nlong_poll_max_s = 60").unwrap();
        assert_eq!(short.long_poll_max, Duration::from_secs(29));
        assert!(resolve("max_sessions = -1").is_err());
        assert!(
            resolve("max_session = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
