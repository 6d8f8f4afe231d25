//! Server addresses as people type them: `ws://host:port`, `host:port`,
//! `host`, with or without the `/ws` path.
//!
//! Every spelling of one address normalises to one [`ServerUrl`], whose
//! text (`ws://host:port`) is also the key logins are saved under: the
//! scheme and host are case-folded, the default port is filled in, an
//! IP address is written in its canonical form and a trailing dot on a
//! name is dropped. Different names for one machine (`localhost` and
//! `127.0.0.1`) stay different servers: they need not be the same one.

use std::fmt;

/// A normalised server address: `ws://HOST:PORT`, to which the client adds
/// the endpoint path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUrl {
    host: String,
    port: u16,
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
    /// Parses `ws://host:port[/ws]`, `host:port` or `host` (port 7500).
    pub fn parse(input: &str) -> Result<Self, BadUrl> {
        let bad = |why| BadUrl {
            input: input.to_owned(),
            why,
        };
        let s = input.trim();
        let scheme_end = s.find("://").map(|i| i + 3);
        let rest = if let Some(r) = scheme_end
            .filter(|&i| s[..i].eq_ignore_ascii_case("ws://"))
            .map(|i| &s[i..])
        {
            r
        } else if scheme_end.is_some_and(|i| s[..i].eq_ignore_ascii_case("wss://")) {
            return Err(bad("TLS (wss://) is not supported by this version"));
        } else if s.contains("://") {
            return Err(bad("the scheme must be ws://"));
        } else {
            s
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
        })
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
        format!(
            "ws://{}:{}{}",
            self.host,
            self.port,
            chatus_protocol::WS_PATH
        )
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ws://{}:{}", self.host, self.port)
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
            ("chat.example.org", "ws://chat.example.org:7500"),
            ("10.0.0.2:8000", "ws://10.0.0.2:8000"),
            ("[::1]:7600", "ws://[::1]:7600"),
            ("[::1]", "ws://[::1]:7500"),
            // One server, one key, however it is typed.
            ("LOCALHOST:7500", "ws://localhost:7500"),
            ("ws://localhost:7500/", "ws://localhost:7500"),
            ("localhost", "ws://localhost:7500"),
            ("WS://LocalHost.:7500/ws", "ws://localhost:7500"),
            ("[0:0:0:0:0:0:0:1]:7500", "ws://[::1]:7500"),
            (" 127.0.0.1 ", "ws://127.0.0.1:7500"),
        ];
        for (input, want) in cases {
            assert_eq!(
                ServerUrl::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        assert_eq!(ServerUrl::parse("h:1").unwrap().endpoint(), "ws://h:1/ws");
        for bad in [
            "",
            "http://x",
            "wss://x",
            "x:notaport",
            "x:0",
            "ws://x:1/other",
            ":80",
            "[::g]",
            "WSS://x",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
