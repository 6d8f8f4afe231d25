//! Login limits: who may try a password now.
//!
//! - **Attempts per address**: every login, registration and failed token
//!   login takes a token from its [`Source`]'s bucket.
//! - **Failures per (account, address)**: a wrong password spends a token
//!   of that pair's bucket, so a guesser slows only themselves. A check
//!   reserves the token before hashing (so concurrent guesses cannot all
//!   slip through) and gives it back when the password was right or no
//!   verdict came.
//! - **Account-wide failure budget**: every failure on an account also
//!   spends from the account's bucket. While that budget is spent, an
//!   address with a failure on the account in the last [`RECENT`] is
//!   refused; an address without one is never refused by it. A flood from
//!   many addresses thus runs into the budget, while the owner, trying from
//!   an address that has not failed, gets in.
//!
//! Memory is bounded by what hashing can produce: an entry is made only by
//! a check that goes on to hash, and [`Throttle::sweep`] drops entries
//! whose buckets are full and whose last failure is no longer recent.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::hashing::Source;
use crate::config::RateConfig;
use crate::ratelimit::{Bucket, Keyed, Rate};

/// How long a failure marks its address as a suspect for the account.
pub(crate) const RECENT: Duration = Duration::from_secs(15 * 60);

struct Pair {
    bucket: Bucket,
    /// The last failure from this address on this account.
    last_failure: Option<Instant>,
}

struct Account {
    budget: Bucket,
    by_source: HashMap<Source, Pair>,
}

/// The limits. See the module doc.
pub(crate) struct Throttle {
    attempts: Keyed<Source>,
    pair_rate: Rate,
    account_rate: Rate,
    // A std Mutex: a map lookup and some arithmetic, never across an await.
    accounts: Mutex<HashMap<String, Account>>,
}

/// Why a check was refused: how long to wait.
pub(crate) type Wait = Duration;

impl Throttle {
    /// Limits from the rate configuration.
    pub(crate) fn new(r: &RateConfig) -> Self {
        Self {
            attempts: Keyed::new(Rate::new(
                r.logins_per_min_per_addr / 60.0,
                r.login_burst_per_addr,
            )),
            pair_rate: Rate::new(
                r.failed_logins_per_min_per_account_and_addr / 60.0,
                r.failed_login_burst_per_account_and_addr,
            ),
            account_rate: Rate::new(
                r.logins_per_min_per_account / 60.0,
                r.login_burst_per_account,
            ),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn accounts(&self) -> MutexGuard<'_, HashMap<String, Account>> {
        // Plain numbers inside: sound after a panic elsewhere, and limiting
        // must go on (fail closed, not open).
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes an attempt from `source`'s budget.
    pub(crate) fn attempt(&self, source: Source) -> Result<(), Wait> {
        self.attempts.take(source)
    }

    /// Before checking a password of `account` from `source`: refuses when
    /// the pair has no failures left, or when the account-wide budget is
    /// spent and this source failed on the account recently. Otherwise
    /// reserves one failure of the pair; settle it with
    /// [`Throttle::succeeded`], [`Throttle::failed`] or
    /// [`Throttle::cancel`].
    pub(crate) fn check(&self, account: &str, source: Source) -> Result<(), Wait> {
        let now = Instant::now();
        let mut accounts = self.accounts();
        if let Some(a) = accounts.get_mut(account) {
            let suspect = a
                .by_source
                .get(&source)
                .and_then(|p| p.last_failure)
                .is_some_and(|t| now.saturating_duration_since(t) < RECENT);
            if suspect {
                a.budget.ready(self.account_rate)?;
            }
            if let Some(p) = a.by_source.get_mut(&source) {
                return p.bucket.take(self.pair_rate);
            }
        }
        let a = accounts
            .entry(account.to_owned())
            .or_insert_with(|| Account {
                budget: Bucket::full(self.account_rate),
                by_source: HashMap::new(),
            });
        let mut pair = Pair {
            bucket: Bucket::full(self.pair_rate),
            last_failure: None,
        };
        pair.bucket.take(self.pair_rate)?;
        a.by_source.insert(source, pair);
        Ok(())
    }

    /// The password was right: the pair's record is forgotten.
    pub(crate) fn succeeded(&self, account: &str, source: Source) {
        let mut accounts = self.accounts();
        if let Some(a) = accounts.get_mut(account) {
            a.by_source.remove(&source);
        }
    }

    /// The password was wrong: the reserved token stays spent, the account's
    /// budget is spent too, and the source is a suspect for [`RECENT`].
    pub(crate) fn failed(&self, account: &str, source: Source) {
        let now = Instant::now();
        let mut accounts = self.accounts();
        if let Some(a) = accounts.get_mut(account) {
            a.budget.spend(self.account_rate);
            if let Some(p) = a.by_source.get_mut(&source) {
                p.last_failure = Some(now);
            }
        }
    }

    /// No verdict came (busy, gone): the reserved token is given back.
    pub(crate) fn cancel(&self, account: &str, source: Source) {
        let mut accounts = self.accounts();
        if let Some(p) = accounts
            .get_mut(account)
            .and_then(|a| a.by_source.get_mut(&source))
        {
            p.bucket.give_back(self.pair_rate);
        }
    }

    /// Forgets what no longer limits anyone.
    pub(crate) fn sweep(&self) {
        self.attempts.sweep();
        let now = Instant::now();
        self.accounts().retain(|_, a| {
            a.by_source.retain(|_, p| {
                let recent = p
                    .last_failure
                    .is_some_and(|t| now.saturating_duration_since(t) < RECENT);
                recent || !p.bucket.is_full(self.pair_rate, now)
            });
            !a.by_source.is_empty() || !a.budget.is_full(self.account_rate, now)
        });
    }

    /// Tracked (account, address) pairs, for tests and metrics.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> usize {
        self.accounts().values().map(|a| a.by_source.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn src(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    fn throttle() -> Throttle {
        Throttle::new(&RateConfig {
            failed_login_burst_per_account_and_addr: 3,
            failed_logins_per_min_per_account_and_addr: 1.0,
            login_burst_per_account: 5,
            logins_per_min_per_account: 1.0,
            ..RateConfig::default()
        })
    }

    fn fail(t: &Throttle, account: &str, source: Source) -> Result<(), Wait> {
        t.check(account, source)?;
        t.failed(account, source);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_guesser_slows_only_themselves() {
        let t = throttle();
        for _ in 0..3 {
            fail(&t, "alice", src(1)).unwrap();
        }
        assert!(t.check("alice", src(1)).is_err());
        // The owner, elsewhere, is not refused; nor is another account.
        t.check("alice", src(2)).unwrap();
        t.succeeded("alice", src(2));
        t.check("bob", src(1)).unwrap();
        t.succeeded("bob", src(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_account_budget_refuses_only_recent_failures() {
        let t = throttle();
        // Five addresses fail once each: the budget (5) is spent.
        for i in 1..=5 {
            fail(&t, "alice", src(i)).unwrap();
        }
        // The suspects are refused, though their own buckets have room...
        for i in 1..=5 {
            assert!(t.check("alice", src(i)).is_err(), "source {i}");
        }
        // ...while an address without a failure gets in, and may fail once.
        fail(&t, "alice", src(9)).unwrap();
        t.check("alice", src(10)).unwrap();
        t.succeeded("alice", src(10));
        // Once a suspect's failure is no longer recent it may try again.
        tokio::time::advance(RECENT).await;
        t.check("alice", src(1)).unwrap();
        t.cancel("alice", src(1));
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_are_given_back_and_entries_swept() {
        let t = throttle();
        for _ in 0..10 {
            t.check("alice", src(1)).unwrap();
            t.cancel("alice", src(1));
        }
        t.check("alice", src(1)).unwrap();
        t.succeeded("alice", src(1));
        assert_eq!(t.pairs(), 0);
        fail(&t, "alice", src(2)).unwrap();
        t.sweep();
        assert_eq!(t.pairs(), 1);
        tokio::time::advance(RECENT).await;
        t.sweep();
        assert_eq!(t.pairs(), 0);
        assert!(t.accounts().is_empty());
    }
}
