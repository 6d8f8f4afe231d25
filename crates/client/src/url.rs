//! Server addresses as people type them: `ws://host:port`, `host:port`,
//! `host`, with or without the `/ws` path.

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
        let rest = if let Some(r) = s.strip_prefix("ws://") {
            r
        } else if s.starts_with("wss://") {
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
            (format!("[{host}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_owned(), chatus_protocol::DEFAULT_PORT),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("missing host"));
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
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
