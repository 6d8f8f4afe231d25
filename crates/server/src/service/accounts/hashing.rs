//! The password-hashing pool: a few long-lived OS threads, each owning one
//! Argon2 memory block it reuses for every hash, fed by a bounded queue
//! that is served fairly across source addresses.
//!
//! Why: Argon2id works in 19 MiB of memory. Hashing on tokio's blocking
//! pool allocated that block afresh on ever-changing threads, and the
//! allocator kept the freed blocks resident: a thousand concurrent wrong
//! logins took the server from 47 MiB to over 11 GiB. Here the memory is
//! `threads × block`, allocated once.
//!
//! Fairness: each [`Source`] has its own queue, and the threads always take
//! the front job of the source served least recently. Sources that keep
//! jobs waiting thus take turns, and a source that has not been served
//! lately (the owner logging in once during a flood) goes before all of
//! them (among sources never served, the one with fewer jobs waiting goes
//! first): a flood from one address delays another address's login by at
//! most about one hash per other waiting source, and usually by none. Bounds: [`LoginConfig::queue_per_source`] jobs per source
//! (past it, [`PoolError::SourceFull`] at once) and
//! [`LoginConfig::queue_max`] in all (past it, [`PoolError::Busy`] at once,
//! except that a source with nothing waiting takes the place of the newest
//! job of the source waiting most). A job still waiting at its deadline is
//! answered [`PoolError::Expired`] without being hashed, and one whose
//! caller has gone (its reply channel closed) is skipped.
//!
//! Stored hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`),
//! parsed here to hash into the thread's own memory; the comparison is in
//! constant time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::config::LoginConfig;

/// Largest Argon2 memory a stored hash may ask for, in KiB (1 GiB): a
/// thread grows its block to fit a stored hash, up to this.
pub(crate) const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;

/// Where a login comes from, for fairness and limits: an IPv4 address, an
/// IPv6 /64 (one subscriber usually holds a whole /64), or this process
/// (administration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count here).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
    /// The server's own work (administration, start-up).
    Local,
}

impl Source {
    /// The source an address counts as.
    pub(crate) fn of(addr: IpAddr) -> Source {
        match addr {
            IpAddr::V4(a) => Source::V4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let o = a.octets();
                    Source::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// What to hash.
pub(crate) enum Work {
    /// Check `password` against a stored PHC string.
    Verify {
        /// The password given.
        password: String,
        /// The stored hash.
        phc: String,
    },
    /// Spend one hash as a check would, for a name that does not exist, so
    /// timing does not tell which names exist. Always fails.
    Dummy {
        /// The password given.
        password: String,
    },
    /// Hash a new password with the pool's parameters and a random salt.
    Hash {
        /// The new password.
        password: String,
    },
}

/// What a job produced.
#[derive(Debug)]
pub(crate) enum Done {
    /// A check's verdict.
    Verified(bool),
    /// A new PHC string.
    Hashed(String),
}

/// Why a job produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolError {
    /// This source has as many jobs waiting as it may.
    #[error("this address has too many password checks waiting")]
    SourceFull,
    /// The queue is full.
    #[error("the password-hashing queue is full")]
    Busy,
    /// The job waited past its deadline and was not hashed.
    #[error("the password check waited too long")]
    Expired,
    /// The pool has stopped.
    #[error("the password-hashing pool has stopped")]
    Closed,
    /// Hashing failed (a malformed stored hash, no randomness).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type Reply = oneshot::Sender<Result<Done, PoolError>>;

struct Job {
    work: Work,
    queued: Instant,
    deadline: Instant,
    reply: Reply,
}

#[derive(Default)]
struct Queues {
    by_source: HashMap<Source, VecDeque<Job>>,
    /// When each source was last served (a count of jobs taken): the
    /// source served least recently goes next, so sources take turns, and
    /// one that has not been served lately (a newcomer, the owner trying
    /// once) goes before every source that keeps the queue full.
    served: HashMap<Source, u64>,
    /// Jobs taken so far.
    tick: u64,
    total: usize,
    stopping: bool,
}

/// How many jobs a source's last service is remembered for once it has
/// nothing waiting; after that it counts as new again.
const SERVED_MEMORY: u64 = 4096;

/// Upper bounds (seconds) of the queue-wait histogram's buckets; a last,
/// unbounded bucket follows.
pub(crate) const WAIT_BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters for metrics; cheap to read at any time.
#[derive(Default)]
struct Stats {
    depth: AtomicUsize,
    hashed: AtomicU64,
    expired: AtomicU64,
    abandoned: AtomicU64,
    refused: AtomicU64,
    wait_micros: AtomicU64,
    waits: [AtomicU64; WAIT_BUCKETS.len() + 1],
}

/// A snapshot of the pool's counters (all since start, but `queue_depth`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStats {
    /// Jobs waiting now.
    pub queue_depth: usize,
    /// Hashes computed.
    pub hashed: u64,
    /// Jobs answered `Expired` without hashing.
    pub expired: u64,
    /// Jobs skipped because their caller had gone.
    pub(crate) abandoned: u64,
    /// Jobs refused at once (`Busy`, `SourceFull`, or evicted).
    pub(crate) refused: u64,
    /// Jobs taken off the queue (hashed, expired or abandoned).
    pub(crate) waited: u64,
    /// Their total time in the queue, in seconds.
    pub(crate) wait_sum_secs: f64,
    /// How many waited at most each [`WAIT_BUCKETS`] bound (cumulative, as
    /// Prometheus histograms count), then all of them.
    pub(crate) wait_buckets: [u64; WAIT_BUCKETS.len() + 1],
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    params: Params,
    per_source: usize,
    max_total: usize,
    max_wait: Duration,
    stats: Stats,
}

/// The pool. Dropping it stops the threads once they finish their job.
pub(crate) struct HashPool {
    shared: Arc<Shared>,
}

impl Shared {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while the lock is held; the queues stay sound.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, source: Source, job: Job) -> Result<(), PoolError> {
        let mut q = self.queues();
        if q.stopping {
            return Err(PoolError::Closed);
        }
        let waiting = q.by_source.get(&source).map_or(0, VecDeque::len);
        if waiting >= self.per_source {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(PoolError::SourceFull);
        }
        if q.total >= self.max_total {
            // A source with nothing waiting must not be shut out by the
            // others: it takes the newest job of the source waiting most.
            let longest = q
                .by_source
                .iter()
                .max_by_key(|(_, jobs)| jobs.len())
                .map(|(s, jobs)| (*s, jobs.len()));
            match longest {
                Some((victim, len)) if waiting == 0 && len > 1 => {
                    if let Some(evicted) = q.by_source.get_mut(&victim).and_then(VecDeque::pop_back)
                    {
                        q.total -= 1;
                        let _ = evicted.reply.send(Err(PoolError::Busy));
                    }
                }
                _ => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(PoolError::Busy);
                }
            }
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        q.by_source.entry(source).or_default().push_back(job);
        q.total += 1;
        self.stats.depth.store(q.total, Ordering::Relaxed);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job: the front job of the source served least recently;
    /// among equals (newcomers), the one with fewer jobs waiting (a flood
    /// keeps its source's queue full), then the one that came first. `None`
    /// once stopping.
    fn next(&self) -> Option<Job> {
        let mut q = self.queues();
        loop {
            if q.stopping {
                return None;
            }
            let pick = q
                .by_source
                .iter()
                .filter_map(|(source, jobs)| {
                    let front = jobs.front()?;
                    let served = q.served.get(source).copied().unwrap_or(0);
                    Some(((served, jobs.len(), front.queued), *source))
                })
                .min_by_key(|(key, _)| *key)
                .map(|(_, source)| source);
            let Some(source) = pick else {
                q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let Some(jobs) = q.by_source.get_mut(&source) else {
                continue;
            };
            let job = jobs.pop_front();
            if jobs.is_empty() {
                q.by_source.remove(&source);
            }
            q.tick += 1;
            let tick = q.tick;
            q.served.insert(source, tick);
            if q.served.len() as u64 > SERVED_MEMORY {
                let Queues {
                    served, by_source, ..
                } = &mut *q;
                served.retain(|s, t| tick - *t < SERVED_MEMORY || by_source.contains_key(s));
            }
            if let Some(job) = job {
                q.total -= 1;
                self.stats.depth.store(q.total, Ordering::Relaxed);
                return Some(job);
            }
        }
    }

    fn record_wait(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.stats.wait_micros.fetch_add(micros, Ordering::Relaxed);
        let secs = waited.as_secs_f64();
        let bucket = WAIT_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(WAIT_BUCKETS.len());
        self.stats.waits[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

impl HashPool {
    /// Starts `config.hash_threads` threads.
    pub(crate) fn start(config: &LoginConfig) -> Result<HashPool, PoolError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            Params::DEFAULT_P_COST,
            None,
        )
        .map_err(|e| PoolError::Failed(format!("bad Argon2 parameters: {e}")))?;
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            params,
            per_source: config.queue_per_source.max(1),
            max_total: config.queue_max.max(1),
            max_wait: Duration::from_millis(config.max_wait_ms.max(1)),
            stats: Stats::default(),
        });
        for i in 0..config.hash_threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("chatus-hash-{i}"))
                .spawn(move || worker(&shared))
                .map_err(|e| PoolError::Failed(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(HashPool { shared })
    }

    /// Queues `work` for `source` and waits for it. Fails at once when the
    /// queue has no room; dropping the future abandons the job (it is
    /// skipped rather than hashed).
    pub(crate) async fn run(&self, source: Source, work: Work) -> Result<Done, PoolError> {
        let (reply, done) = oneshot::channel();
        let queued = Instant::now();
        let job = Job {
            work,
            queued,
            deadline: queued + self.shared.max_wait,
            reply,
        };
        self.shared.push(source, job)?;
        done.await.map_err(|_| PoolError::Closed)?
    }

    /// Checks a password against a stored hash.
    pub(crate) async fn verify(
        &self,
        source: Source,
        password: &str,
        phc: Option<String>,
    ) -> Result<bool, PoolError> {
        let password = password.to_owned();
        let work = match phc {
            Some(phc) => Work::Verify { password, phc },
            None => Work::Dummy { password },
        };
        match self.run(source, work).await? {
            Done::Verified(ok) => Ok(ok),
            Done::Hashed(_) => Err(PoolError::Failed("a check produced a hash".into())),
        }
    }

    /// Hashes a new password.
    pub(crate) async fn hash(&self, source: Source, password: &str) -> Result<String, PoolError> {
        let work = Work::Hash {
            password: password.to_owned(),
        };
        match self.run(source, work).await? {
            Done::Hashed(phc) => Ok(phc),
            Done::Verified(_) => Err(PoolError::Failed("a hash produced a verdict".into())),
        }
    }

    /// Jobs waiting now.
    pub(crate) fn queue_depth(&self) -> usize {
        self.shared.stats.depth.load(Ordering::Relaxed)
    }

    /// The counters.
    pub(crate) fn stats(&self) -> PoolStats {
        let s = &self.shared.stats;
        let mut buckets = [0; WAIT_BUCKETS.len() + 1];
        let mut running = 0;
        for (out, n) in buckets.iter_mut().zip(&s.waits) {
            running += n.load(Ordering::Relaxed);
            *out = running;
        }
        PoolStats {
            queue_depth: s.depth.load(Ordering::Relaxed),
            hashed: s.hashed.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
            abandoned: s.abandoned.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            waited: running,
            wait_sum_secs: s.wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
            wait_buckets: buckets,
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        let jobs: Vec<Job> = {
            let mut q = self.shared.queues();
            q.stopping = true;
            q.total = 0;
            q.by_source.drain().flat_map(|(_, jobs)| jobs).collect()
        };
        for job in jobs {
            let _ = job.reply.send(Err(PoolError::Closed));
        }
        self.shared.ready.notify_all();
    }
}

/// A hashing thread: takes jobs until the pool stops, hashing each into the
/// one memory block it owns.
fn worker(shared: &Shared) {
    // Allocated at the first hash (an idle server, or an administration
    // command, holds none) and kept from then on.
    let mut memory = Vec::new();
    while let Some(job) = shared.next() {
        process(shared, job, &mut memory);
    }
}

/// Answers one job: skipped when its caller has gone, `Expired` past its
/// deadline, else hashed.
fn process(shared: &Shared, job: Job, memory: &mut Vec<Block>) {
    if job.reply.is_closed() {
        shared.stats.abandoned.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let now = Instant::now();
    shared.record_wait(now.saturating_duration_since(job.queued));
    if now > job.deadline {
        shared.stats.expired.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(Err(PoolError::Expired));
        return;
    }
    let result = match job.work {
        Work::Verify { password, phc } => {
            verify(password.as_bytes(), &phc, memory).map(Done::Verified)
        }
        Work::Dummy { password } => {
            dummy(password.as_bytes(), &shared.params, memory).map(Done::Verified)
        }
        Work::Hash { password } => {
            hash_new(password.as_bytes(), &shared.params, memory).map(Done::Hashed)
        }
    };
    shared.stats.hashed.fetch_add(1, Ordering::Relaxed);
    let _ = job.reply.send(result);
}

/// Grows `memory` to hold `params`' blocks (it never shrinks: the thread
/// keeps what the largest stored hash needed).
fn fit<'m>(memory: &'m mut Vec<Block>, params: &Params) -> Result<&'m mut [Block], PoolError> {
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return Err(PoolError::Failed(format!(
            "a stored hash asks for {} KiB of memory",
            params.m_cost()
        )));
    }
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, Block::new());
    }
    Ok(&mut memory[..need])
}

fn failed(e: impl std::fmt::Display) -> PoolError {
    PoolError::Failed(e.to_string())
}

/// Checks `password` against the PHC string `phc`.
pub(crate) fn verify(
    password: &[u8],
    phc: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, PoolError> {
    let parsed = PasswordHash::new(phc).map_err(failed)?;
    let algorithm = Algorithm::new(parsed.algorithm.as_str()).map_err(failed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(failed)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(failed)?;
    let salt = parsed
        .salt
        .ok_or_else(|| failed("the stored hash has no salt"))?;
    let expected = parsed
        .hash
        .ok_or_else(|| failed("the stored hash has no output"))?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, fit(memory, &params)?)
        .map_err(failed)?;
    let got = Output::new(&out).map_err(failed)?;
    // `Output`'s equality is constant-time.
    Ok(got == expected)
}

/// Spends one hash with `params`, as a check of a nonexistent account.
fn dummy(password: &[u8], params: &Params, memory: &mut Vec<Block>) -> Result<bool, PoolError> {
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            b"chatus-no-such-user",
            &mut out,
            fit(memory, params)?,
        )
        .map_err(failed)?;
    Ok(false)
}

/// Hashes a new password: Argon2id, `params`, a random 16-byte salt.
pub(crate) fn hash_new(
    password: &[u8],
    params: &Params,
    memory: &mut Vec<Block>,
) -> Result<String, PoolError> {
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    getrandom::fill(&mut salt).map_err(|e| failed(format!("no randomness: {e}")))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, fit(memory, params)?)
        .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests;
