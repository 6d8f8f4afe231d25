//! Who may connect: per-address connection caps, checked at accept time.
//!
//! Each address may hold at most `max_connections_per_addr` connections,
//! of which at most `max_pre_login_per_addr` not logged in (plain HTTP ones
//! count as not logged in). An IPv6 address counts by its /64, the block
//! one host usually gets, so a host cannot dodge the cap by hopping through
//! its own addresses. A connection past a cap is refused before anything
//! else is read (see [`crate::server`]).
//!
//! The counts live in one `std::sync::Mutex`ed map touched only when a
//! connection opens, logs in and closes, never per frame. A [`Slot`] is a
//! connection's place in them; dropping it gives the place back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics::{ConnState, Metrics};

/// An address as the caps count it: an IPv4 address, or an IPv6 /64.
/// (Two `u64`s rather than a `u128`, whose 16-byte alignment would pad
/// every connection's future.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey([u64; 2]);

impl AddrKey {
    /// The key of `ip`.
    pub(crate) fn of(ip: IpAddr) -> Self {
        let bits = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_ipv6_mapped().to_bits(),
                None => v6.to_bits() & !u128::from(u64::MAX),
            },
        };
        #[expect(clippy::cast_possible_truncation, reason = "splitting in halves")]
        AddrKey([(bits >> 64) as u64, bits as u64])
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address holds its cap of connections.
    PerAddr,
    /// The address holds its cap of connections not logged in.
    PreLoginPerAddr,
    /// The server holds its cap of connections.
    Full,
}

impl Refusal {
    /// The HTTP response sent before closing: a status and a one-line
    /// reason, `Connection: close`, and when to try again.
    pub(crate) fn response(self) -> &'static str {
        match self {
            Refusal::PerAddr => {
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 39\r\nConnection: close\r\nRetry-After: 10\r\n\r\n\
                 too many connections from your address\n"
            }
            Refusal::PreLoginPerAddr => {
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 53\r\nConnection: close\r\nRetry-After: 10\r\n\r\n\
                 too many connections not logged in from your address\n"
            }
            Refusal::Full => {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 38\r\nConnection: close\r\nRetry-After: 10\r\n\r\n\
                 the server is at its connection limit\n"
            }
        }
    }

    /// The metrics label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::PerAddr => "per_addr",
            Refusal::PreLoginPerAddr => "pre_login_per_addr",
            Refusal::Full => "full",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    total: usize,
    pre_login: usize,
}

/// The per-address counts.
#[derive(Debug)]
pub struct Admission {
    per_addr: usize,
    pre_login_per_addr: usize,
    counts: Mutex<HashMap<AddrKey, Counts>>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// Caps of `per_addr` connections per address, `pre_login_per_addr` of
    /// them not logged in.
    pub(crate) fn new(per_addr: usize, pre_login_per_addr: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            per_addr,
            pre_login_per_addr,
            counts: Mutex::default(),
            metrics,
        }
    }

    /// Takes a place for a new connection from `ip`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = AddrKey::of(ip);
        let Ok(mut counts) = self.counts.lock() else {
            // Fail closed: a poisoned map cannot be trusted to count.
            return Err(Refusal::Full);
        };
        let c = counts.entry(key).or_default();
        if c.total >= self.per_addr {
            return Err(Refusal::PerAddr);
        }
        if c.pre_login >= self.pre_login_per_addr {
            return Err(Refusal::PreLoginPerAddr);
        }
        c.total += 1;
        c.pre_login += 1;
        drop(counts);
        self.metrics.conn_opened(ConnState::PreLogin);
        Ok(Slot {
            admission: self.clone(),
            key,
            state: ConnState::PreLogin,
        })
    }

    /// Connections from `ip` now: (all, not logged in).
    pub fn counts(&self, ip: IpAddr) -> (usize, usize) {
        self.counts
            .lock()
            .ok()
            .and_then(|c| c.get(&AddrKey::of(ip)).map(|c| (c.total, c.pre_login)))
            .unwrap_or((0, 0))
    }

    fn release(&self, key: AddrKey, pre_login: bool) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(c) = counts.get_mut(&key)
        {
            c.total = c.total.saturating_sub(1);
            if pre_login {
                c.pre_login = c.pre_login.saturating_sub(1);
            }
            if c.total == 0 {
                counts.remove(&key);
            }
        }
    }

    fn logged_in(&self, key: AddrKey) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(c) = counts.get_mut(&key)
        {
            c.pre_login = c.pre_login.saturating_sub(1);
        }
    }
}

/// A connection's place in the per-address counts, and its state in the
/// connection gauges. Dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    key: AddrKey,
    state: ConnState,
}

impl Slot {
    /// The connection logged in: it no longer counts against its address's
    /// pre-login cap. Only the first call counts.
    pub(crate) fn logged_in(&mut self) {
        if self.state == ConnState::LoggedIn {
            return;
        }
        let was = std::mem::replace(&mut self.state, ConnState::LoggedIn);
        if was != ConnState::Http {
            self.admission.logged_in(self.key);
        }
        self.admission.metrics.conn_moved(was, ConnState::LoggedIn);
    }

    /// Whether [`Slot::logged_in`] was called.
    pub(crate) fn is_logged_in(&self) -> bool {
        self.state == ConnState::LoggedIn
    }

    /// The connection is served as plain HTTP (it still counts as not
    /// logged in).
    pub(crate) fn http(&mut self) {
        if self.state == ConnState::PreLogin {
            self.state = ConnState::Http;
            self.admission
                .metrics
                .conn_moved(ConnState::PreLogin, ConnState::Http);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission
            .release(self.key, self.state != ConnState::LoggedIn);
        self.admission.metrics.conn_closed(self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddrKey::of(a), AddrKey::of(b));
        assert_ne!(AddrKey::of(a), AddrKey::of(c));
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert_eq!(AddrKey::of(v4), AddrKey::of(mapped));
        assert_ne!(AddrKey::of(v4), AddrKey::of(other));
    }

    #[test]
    fn caps_count_pre_login_and_total() {
        let adm = Arc::new(Admission::new(3, 2, Arc::default()));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut a = adm.admit(ip).unwrap();
        let b = adm.admit(ip).unwrap();
        assert_eq!(adm.admit(ip).unwrap_err(), Refusal::PreLoginPerAddr);
        assert!(adm.admit("10.0.0.2".parse().unwrap()).is_ok());
        a.logged_in();
        a.logged_in();
        assert_eq!(adm.counts(ip), (2, 1));
        let c = adm.admit(ip).unwrap();
        assert_eq!(adm.admit(ip).unwrap_err(), Refusal::PerAddr);
        drop(b);
        drop(c);
        assert_eq!(adm.counts(ip), (1, 0));
        drop(a);
        assert_eq!(adm.counts(ip), (0, 0));
        assert!(
            adm.counts.lock().unwrap().is_empty(),
            "no entry left behind"
        );
    }

    #[test]
    fn refusals_are_well_formed_http() {
        for r in [Refusal::PerAddr, Refusal::PreLoginPerAddr, Refusal::Full] {
            let text = r.response();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(body.len(), len, "{r:?}");
        }
    }
}
