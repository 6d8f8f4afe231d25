//! Unit tests of the hashing pool: PHC compatibility, the fair queue, its
//! bounds, deadlines and abandoned jobs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use super::*;

/// Cheap parameters: the queue logic does not care how long a hash takes.
fn cheap() -> LoginConfig {
    LoginConfig {
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..LoginConfig::default()
    }
}

fn shared(per_source: usize, max_total: usize) -> Shared {
    Shared {
        queues: Mutex::new(Queues::default()),
        ready: Condvar::new(),
        params: Params::new(64, 1, 1, None).unwrap(),
        per_source,
        max_total,
        max_wait: Duration::from_secs(60),
        stats: Stats::default(),
    }
}

/// A job tagged with `tag` (as its password) and its reply receiver.
fn job(tag: &str) -> (Job, oneshot::Receiver<Result<Done, PoolError>>) {
    let (reply, rx) = oneshot::channel();
    let now = Instant::now();
    let job = Job {
        work: Work::Dummy {
            password: tag.to_owned(),
        },
        queued: now,
        deadline: now + Duration::from_secs(60),
        reply,
    };
    (job, rx)
}

fn tag(job: &Job) -> String {
    match &job.work {
        Work::Dummy { password } => password.clone(),
        _ => String::new(),
    }
}

fn src(last: u8) -> Source {
    Source::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

#[test]
fn hashes_interoperate_with_the_argon2_crate() {
    let mut memory = Vec::new();
    let params = Params::default();
    let ours = hash_new(b"correct horse", &params, &mut memory).unwrap();
    assert!(
        ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{ours}"
    );
    Argon2::default()
        .verify_password(b"correct horse", ours.as_str())
        .unwrap();
    assert!(verify(b"correct horse", &ours, &mut memory).unwrap());
    assert!(!verify(b"correct horsf", &ours, &mut memory).unwrap());
    // A hash the crate made (with other parameters) checks here too, in
    // the same memory block.
    let theirs = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(1024, 3, 1, None).unwrap(),
    )
    .hash_password(b"hunter22")
    .unwrap()
    .to_string();
    assert!(verify(b"hunter22", &theirs, &mut memory).unwrap());
    assert!(!verify(b"hunter23", &theirs, &mut memory).unwrap());
    assert!(verify(b"x", "not a hash", &mut memory).is_err());
    assert!(!dummy(b"anything", &params, &mut memory).unwrap());
}

#[test]
fn sources_are_served_in_turn() {
    let s = shared(10, 100);
    for t in ["a1", "a2", "a3"] {
        s.push(src(1), job(t).0).unwrap();
    }
    s.push(src(2), job("b1").0).unwrap();
    s.push(src(3), job("c1").0).unwrap();
    s.push(src(2), job("b2").0).unwrap();
    let order: Vec<String> = (0..6).map(|_| tag(&s.next().unwrap())).collect();
    // First turns: fewer waiting first; then least recently served.
    assert_eq!(order, ["c1", "b1", "a1", "b2", "a2", "a3"]);
    assert_eq!(s.queues().total, 0);
    assert!(s.queues().by_source.is_empty());
}

#[test]
fn a_source_not_served_lately_goes_first() {
    let s = shared(100, 100);
    for i in 0..10 {
        s.push(src(1), job(&format!("a{i}")).0).unwrap();
        s.push(src(2), job(&format!("b{i}")).0).unwrap();
    }
    let first: Vec<String> = (0..4).map(|_| tag(&s.next().unwrap())).collect();
    assert_eq!(first, ["a0", "b0", "a1", "b1"]);
    // The owner arrives behind 16 waiting jobs of two flooding sources.
    s.push(src(9), job("owner").0).unwrap();
    assert_eq!(tag(&s.next().unwrap()), "owner");
    assert_eq!(tag(&s.next().unwrap()), "a2");
    // Among sources never served, one with fewer jobs waiting goes first:
    // a flood's sources keep their queues full from the start.
    let s = shared(100, 100);
    for i in 0..4 {
        s.push(src(1), job(&format!("a{i}")).0).unwrap();
        s.push(src(2), job(&format!("b{i}")).0).unwrap();
    }
    s.push(src(9), job("owner").0).unwrap();
    assert_eq!(tag(&s.next().unwrap()), "owner");
}

#[test]
fn an_ipv6_subscriber_is_one_source() {
    let a = Source::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6)));
    let b = Source::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9)));
    let c = Source::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 3, 4, 5, 6)));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mapped = Source::of(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()));
    assert_eq!(mapped, Source::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
}

#[test]
fn queues_are_bounded_per_source_and_in_all() {
    let s = shared(2, 4);
    s.push(src(1), job("a1").0).unwrap();
    s.push(src(1), job("a2").0).unwrap();
    assert_eq!(s.push(src(1), job("a3").0), Err(PoolError::SourceFull));
    s.push(src(2), job("b1").0).unwrap();
    s.push(src(2), job("b2").0).unwrap();
    // Full: a source already waiting is refused...
    assert_eq!(s.push(src(2), job("b3").0), Err(PoolError::SourceFull));
    // ...but one with nothing waiting takes the newest place of a source
    // waiting most, which hears `Busy`.
    s.push(src(3), job("c1").0).unwrap();
    let mut evicted = 0;
    let order: Vec<String> = (0..4).map(|_| tag(&s.next().unwrap())).collect();
    assert!(order.contains(&"c1".to_owned()), "{order:?}");
    for t in ["a2", "b2"] {
        if !order.contains(&t.to_owned()) {
            evicted += 1;
        }
    }
    assert_eq!(evicted, 1, "{order:?}");
    // Everyone has one waiting and the queue is full: refused.
    let s = shared(1, 2);
    s.push(src(1), job("a1").0).unwrap();
    s.push(src(2), job("b1").0).unwrap();
    assert_eq!(s.push(src(3), job("c1").0), Err(PoolError::Busy));
    assert_eq!(s.stats.refused.load(Ordering::Relaxed), 1);
}

#[test]
fn late_and_abandoned_jobs_are_not_hashed() {
    let s = shared(10, 10);
    let mut memory = Vec::new();
    let (mut late, late_rx) = job("late");
    late.deadline = Instant::now() - Duration::from_millis(1);
    process(&s, late, &mut memory);
    let (gone, gone_rx) = job("gone");
    drop(gone_rx);
    process(&s, gone, &mut memory);
    let (fine, fine_rx) = job("fine");
    process(&s, fine, &mut memory);
    assert!(matches!(
        late_rx.blocking_recv().unwrap(),
        Err(PoolError::Expired)
    ));
    assert!(matches!(
        fine_rx.blocking_recv().unwrap(),
        Ok(Done::Verified(false))
    ));
    assert_eq!(s.stats.hashed.load(Ordering::Relaxed), 1);
    assert_eq!(s.stats.expired.load(Ordering::Relaxed), 1);
    assert_eq!(s.stats.abandoned.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_hashes_and_checks() {
    let pool = HashPool::start(&cheap()).unwrap();
    let phc = pool.hash(Source::Local, "long enough").await.unwrap();
    assert!(
        pool.verify(src(1), "long enough", Some(phc.clone()))
            .await
            .unwrap()
    );
    assert!(!pool.verify(src(1), "wrong", Some(phc)).await.unwrap());
    assert!(!pool.verify(src(1), "long enough", None).await.unwrap());
    let stats = pool.stats();
    assert_eq!(stats.hashed, 4);
    assert_eq!(stats.waited, 4);
    assert_eq!(stats.wait_buckets[WAIT_BUCKETS.len()], 4);
    assert_eq!(pool.queue_depth(), 0);
}
