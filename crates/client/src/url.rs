//! Server addresses as people type them: `wss://host:port`, `ws://host:port`,
//! `host:port`, `host`, with or without the `/ws` path.
//!
//! Servers serve TLS unless told otherwise, so an address without a scheme
//! means `wss://`; `ws://` must be asked for (a server behind a proxy on
//! the same machine, or started with `--plain`).
//!
//! Every spelling of one address normalises to one [`ServerUrl`]: the
//! scheme and host are case-folded, the default port is filled in, an
//! IP address is written in its canonical form and a trailing dot on a
//! name is dropped. Logins and pinned certificates are kept under
//! [`ServerUrl::key`], `host:port` without the scheme, so logins saved
//! when servers spoke `ws://` keep working over `wss://`. Different names
//! for one machine (`localhost` and `127.0.0.1`) stay different servers:
//! they need not be the same one.

use std::fmt;

/// A normalised server address: `wss://HOST:PORT` (or `ws://` without
/// TLS), to which the client adds the endpoint path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUrl {
    host: String,
    port: u16,
    tls: bool,
}

/// The address could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid server address {input:?}: {why}.")]
pub struct BadUrl {
    /// What was typed.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl ServerUrl {
    /// Parses `wss://host:port[/ws]`, `ws://host:port[/ws]`, `host:port` or
    /// `host` (port 7500); without a scheme, TLS.
    pub fn parse(input: &str) -> Result<Self, BadUrl> {
        let bad = |why| BadUrl {
            input: input.to_owned(),
            why,
        };
        let s = input.trim();
        let scheme_end = s.find("://").map(|i| i + 3);
        let (tls, rest) = match scheme_end {
            Some(i) if s[..i].eq_ignore_ascii_case("wss://") => (true, &s[i..]),
            Some(i) if s[..i].eq_ignore_ascii_case("ws://") => (false, &s[i..]),
            Some(_) => return Err(bad("the scheme must be wss:// (or ws:// without TLS)")),
            None => (true, s),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !(path.is_empty() || path == "/" || path == chatus_protocol::WS_PATH) {
            return Err(bad("the path, if any, must be /ws"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| bad("unclosed [ in an IPv6 address"))?;
            let host = &v6[..end];
            let port = match &v6[end + 1..] {
                "" => chatus_protocol::DEFAULT_PORT,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad port"))?,
            };
            let ip: std::net::Ipv6Addr = host.parse().map_err(|_| bad("bad IPv6 address"))?;
            (format!("[{ip}]"), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None => (authority, chatus_protocol::DEFAULT_PORT),
            };
            let host = host.strip_suffix('.').unwrap_or(host);
            match host.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => (ip.to_string(), port),
                Err(_) => (host.to_owned(), port),
            }
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty()
            || host.contains(char::is_whitespace)
            || host.contains(['/', '@'])
            || (bare.contains(':') && !host.starts_with('['))
        {
            return Err(bad("missing or malformed host"));
        }
        if port == 0 {
            return Err(bad("port 0 cannot be connected to"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            tls,
        })
    }

    /// Whether the connection is made over TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `host:port`: what logins and pinned certificates are kept under,
    /// the same with or without TLS.
    pub fn key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("{self}{}", chatus_protocol::WS_PATH)
    }

    /// The scheme: `wss` or `ws`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "wss" } else { "ws" }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
    }
}

impl std::str::FromStr for ServerUrl {
    type Err = BadUrl;
    fn from_str(s: &str) -> Result<Self, BadUrl> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_people_type() {
        let cases = [
            ("ws://127.0.0.1:7500", "ws://127.0.0.1:7500"),
            ("ws://127.0.0.1:7500/ws", "ws://127.0.0.1:7500"),
            ("ws://LocalHost:9/", "ws://localhost:9"),
            // Without a scheme: TLS, as servers serve by default.
            ("chat.example.org", "wss://chat.example.org:7500"),
            ("10.0.0.2:8000", "wss://10.0.0.2:8000"),
            ("[::1]:7600", "wss://[::1]:7600"),
            ("[::1]", "wss://[::1]:7500"),
            ("wss://Chat.Example.org/ws", "wss://chat.example.org:7500"),
            ("WSS://h:9/", "wss://h:9"),
            // One server, one address, however it is typed.
            ("LOCALHOST:7500", "wss://localhost:7500"),
            ("ws://localhost:7500/", "ws://localhost:7500"),
            ("localhost", "wss://localhost:7500"),
            ("WS://LocalHost.:7500/ws", "ws://localhost:7500"),
            ("[0:0:0:0:0:0:0:1]:7500", "wss://[::1]:7500"),
            (" 127.0.0.1 ", "wss://127.0.0.1:7500"),
        ];
        for (input, want) in cases {
            assert_eq!(
                ServerUrl::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        assert_eq!(ServerUrl::parse("h:1").unwrap().endpoint(), "wss://h:1/ws");
        assert_eq!(
            ServerUrl::parse("ws://h:1").unwrap().endpoint(),
            "ws://h:1/ws"
        );
        // Logins and pins are kept without the scheme.
        assert_eq!(ServerUrl::parse("ws://H:1/ws").unwrap().key(), "h:1");
        assert_eq!(ServerUrl::parse("wss://h:1").unwrap().key(), "h:1");
        for bad in [
            "",
            "http://x",
            "https://x",
            "x:notaport",
            "x:0",
            "ws://x:1/other",
            ":80",
            "[::g]",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
