//! Token buckets, alone or keyed (per user, per address, per account), and
//! [`Meter`]: keyed buckets where an event may cost several tokens and
//! which forget refilled buckets by themselves.
//!
//! A bucket holds up to `burst` tokens and refills at `rate` per second;
//! each event takes one (or its cost, with a meter). Time comes from
//! `tokio::time::Instant`, so tests can pause and advance the clock.
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
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A rate: `per_sec` tokens a second, up to `burst`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Refill per second.
    pub(crate) per_sec: f64,
    /// Capacity.
    pub(crate) burst: f64,
}

impl Rate {
    /// A rate from per-second refill and burst.
    pub(crate) fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst.max(1)),
        }
    }
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(rate: Rate) -> Self {
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
    pub(crate) fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        self.take_n(rate, 1.0)
    }

    /// Whether a token is there, without taking it; if not, how long until
    /// one is.
    pub(crate) fn ready(&mut self, rate: Rate) -> Result<(), Duration> {
        self.refill(rate, Instant::now());
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / rate.per_sec;
            Err(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0)))
        }
    }

    /// Takes `n` tokens at once, or none; on failure says how long until
    /// `n` are there.
    pub(crate) fn take_n(&mut self, rate: Rate, n: f64) -> Result<(), Duration> {
        self.refill(rate, Instant::now());
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            let wait = (n - self.tokens) / rate.per_sec;
            Err(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0)))
        }
    }

    /// Takes a token if there is one, else nothing: an event that happened
    /// anyway (a failure) spends what is left.
    pub(crate) fn spend(&mut self, rate: Rate) {
        self.refill(rate, Instant::now());
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Returns a token taken for an event that did not happen after all.
    pub(crate) fn give_back(&mut self, rate: Rate) {
        self.tokens = (self.tokens + 1.0).min(rate.burst);
    }

    /// Whether the bucket is full at `now` (it then behaves as a new one).
    pub(crate) fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst
    }
}

/// Buckets by key, created full on first use.
#[derive(Debug)]
pub(crate) struct Keyed<K> {
    rate: Rate,
    // Held for one map lookup and a little arithmetic; never across await.
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash> Keyed<K> {
    /// Buckets sharing one rate.
    pub(crate) fn new(rate: Rate) -> Self {
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
    pub(crate) fn take(&self, key: K) -> Result<(), Duration> {
        self.map()
            .entry(key)
            .or_insert_with(|| Bucket::full(self.rate))
            .take(self.rate)
    }

    /// Forgets buckets that are full again (they behave as new ones would).
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.map().retain(|_, b| !b.is_full(self.rate, now));
    }

    /// How many keys are tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no key is tracked.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A meter never forgets fewer buckets than this at once.
const METER_SWEEP_MIN: usize = 1024;

/// Buckets by key where an event may cost several tokens, created full on
/// first use. A meter needs no sweeper: whenever it holds twice as many
/// buckets as after its last sweep (and at least [`METER_SWEEP_MIN`]), it
/// forgets those that are full again, so it holds O(keys active lately)
/// at an amortised O(1) cost per event.
#[derive(Debug)]
pub(crate) struct Meter<K> {
    rate: Rate,
    // Held for one map lookup and a little arithmetic (now and then a
    // sweep); never across an await.
    inner: Mutex<MeterInner<K>>,
}

#[derive(Debug)]
struct MeterInner<K> {
    buckets: HashMap<K, Bucket>,
    sweep_at: usize,
}

impl<K: Eq + Hash> Meter<K> {
    /// A meter whose buckets share one rate.
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            inner: Mutex::new(MeterInner {
                buckets: HashMap::new(),
                sweep_at: METER_SWEEP_MIN,
            }),
        }
    }

    /// Takes `cost` tokens for `key`, or none; on failure says how long
    /// until they are there. A cost of 0 always passes.
    pub(crate) fn take(&self, key: K, cost: u32) -> Result<(), Duration> {
        if cost == 0 {
            return Ok(());
        }
        // Every change under this lock is one insertion or a little
        // arithmetic, so a poisoned map is still sound: keep limiting
        // rather than fail open.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.buckets.len() >= inner.sweep_at {
            let now = Instant::now();
            let rate = self.rate;
            inner.buckets.retain(|_, b| !b.is_full(rate, now));
            inner.sweep_at = (inner.buckets.len() * 2).max(METER_SWEEP_MIN);
        }
        inner
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(self.rate))
            .take_n(self.rate, f64::from(cost))
    }

    /// How many keys are tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buckets
            .len()
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

    #[tokio::test(start_paused = true)]
    async fn meters_charge_costs_and_say_when_they_will_be_there() {
        let m = Meter::new(Rate::new(10.0, 20));
        m.take("a", 16).unwrap();
        // 4 left: a cost of 5 waits for one more token (0.1 s), and takes
        // nothing meanwhile.
        let wait = m.take("a", 5).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        m.take("a", 4).unwrap();
        m.take("a", 0).unwrap();
        assert!(m.take("a", 1).is_err());
        m.take("b", 20).unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        m.take("a", 5).unwrap();
    }

    /// A meter is never swept from outside: one key after another must not
    /// grow it without bound.
    #[tokio::test(start_paused = true)]
    async fn meters_forget_refilled_buckets_by_themselves() {
        let m = Meter::new(Rate::new(100.0, 10));
        for round in 0..10u32 {
            for i in 0..METER_SWEEP_MIN as u32 {
                m.take(round * 100_000 + i, 1).unwrap();
            }
            // Every earlier round's buckets refill meanwhile.
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert!(m.len() <= 2 * METER_SWEEP_MIN, "{} buckets", m.len());
        // Buckets still spending are kept.
        let m = Meter::new(Rate::new(0.001, 1));
        for i in 0..3 * METER_SWEEP_MIN {
            m.take(i, 1).unwrap();
            assert!(m.take(i, 1).is_err());
        }
        assert_eq!(m.len(), 3 * METER_SWEEP_MIN);
    }
}
