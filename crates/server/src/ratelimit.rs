//! Token buckets, alone or keyed (per user, per address, per account).
//!
//! A bucket holds up to `burst` tokens and refills at `rate` per second;
//! each event takes one. Time comes from `tokio::time::Instant`, so tests
//! can pause and advance the clock.
//!
//! A keyed set never fails open: its lock is taken back after a panic
//! elsewhere (the map holds plain numbers, so it is still sound), and
//! limiting goes on.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A single token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A rate: `per_sec` tokens a second, up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Refill per second.
    pub per_sec: f64,
    /// Capacity.
    pub burst: f64,
}

impl Rate {
    /// A rate from per-second refill and burst.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst.max(1)),
        }
    }
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: Rate) -> Self {
        Self {
            tokens: rate.burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_sec).min(rate.burst);
        self.last = now;
    }

    /// Takes a token; on failure says how long until one is there.
    pub fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        self.ready(rate)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Whether a token is there, without taking it; if not, how long until
    /// one is.
    pub fn ready(&mut self, rate: Rate) -> Result<(), Duration> {
        self.refill(rate, Instant::now());
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / rate.per_sec;
            Err(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0)))
        }
    }

    /// Takes a token if there is one, else nothing: an event that happened
    /// anyway (a failure) spends what is left.
    pub fn spend(&mut self, rate: Rate) {
        self.refill(rate, Instant::now());
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Returns a token taken for an event that did not happen after all.
    pub fn give_back(&mut self, rate: Rate) {
        self.tokens = (self.tokens + 1.0).min(rate.burst);
    }

    /// Whether the bucket is full at `now` (it then behaves as a new one).
    pub fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst
    }
}

/// Buckets by key, created full on first use.
#[derive(Debug)]
pub struct Keyed<K> {
    rate: Rate,
    // Held for one map lookup and a little arithmetic; never across await.
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash> Keyed<K> {
    /// Buckets sharing one rate.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, Bucket>> {
        // A panic while the lock was held cannot leave the map unsound (it
        // holds plain numbers), so take it back rather than stop limiting.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token for `key`.
    pub fn take(&self, key: K) -> Result<(), Duration> {
        self.map()
            .entry(key)
            .or_insert_with(|| Bucket::full(self.rate))
            .take(self.rate)
    }

    /// Forgets buckets that are full again (they behave as new ones would).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.map().retain(|_, b| !b.is_full(self.rate, now));
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills() {
        let k = Keyed::new(Rate::new(2.0, 3));
        for _ in 0..3 {
            k.take("a").unwrap();
        }
        let wait = k.take("a").unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        k.take("b").unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        k.take("a").unwrap();
        assert!(k.take("a").is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        k.sweep();
        assert!(k.is_empty());
    }

    /// Regression (issue 9): after a panic poisoned the lock, `take`
    /// returned `Ok` for every call, which switched limiting off.
    #[tokio::test(start_paused = true)]
    async fn a_poisoned_lock_keeps_limiting() {
        let k = Keyed::new(Rate::new(0.001, 2));
        k.take("a").unwrap();
        let poisoned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = k.buckets.lock().unwrap();
            panic!("a panic while the lock is held");
        }));
        assert!(poisoned.is_err());
        assert!(k.buckets.is_poisoned());
        k.take("a").unwrap();
        assert!(k.take("a").is_err(), "the limit must hold after a poison");
        assert_eq!(k.len(), 1);
        k.sweep();
        assert_eq!(k.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ready_spend_and_give_back() {
        let rate = Rate::new(1.0, 2);
        let mut b = Bucket::full(rate);
        b.ready(rate).unwrap();
        b.take(rate).unwrap();
        b.spend(rate);
        assert!(b.ready(rate).is_err());
        b.spend(rate);
        assert!(b.ready(rate).is_err());
        b.give_back(rate);
        b.take(rate).unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.is_full(rate, Instant::now()));
    }
}
