//! Measures the crate's costs on this machine: Megolm encryption and
//! decryption in messages per second and CPU per message for one device,
//! and sharing a room key with 100 members' devices (one Olm encryption
//! each, with new sessions and again with existing ones).
//!
//! ```sh
//! cargo run -p chatus-e2ee --release --example measure [MESSAGES]
//! ```
//!
//! Prints one line per figure and a JSON line with all of them. CPU time
//! is the process's (from `/proc/self/schedstat`, so Linux only).

use std::time::Instant;

use chatus_e2ee::{
    ConversationId, Device, DeviceKeys, SignedKey, Timestamp, ToDevicePayload, UserId,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let messages: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 20_000,
    };
    let room = ConversationId::new("general")?;
    let body = "x".repeat(100);
    let mut alice = Device::new(UserId::new("alice")?)?;
    let mut bob = Device::new(UserId::new("bob")?)?;
    alice.set_rotation_policy(chatus_e2ee::RotationPolicy {
        max_messages: u32::MAX,
        max_age_ms: u64::MAX,
    });

    // Megolm encryption.
    let first = alice.encrypt(&room, &body, Timestamp(0));
    let key = first.new_room_key.ok_or("no room key")?;
    let bob_keys = bob.device_keys();
    let otk = claim(&mut bob);
    let shared = alice.encrypt_to_device(&bob_keys, Some(&otk), ToDevicePayload::RoomKey(key))?;
    bob.decrypt_to_device(&alice.device_keys(), &shared)?;
    let (wall, cpu) = measure(|| {
        let mut events = Vec::with_capacity(messages);
        for _ in 0..messages {
            events.push(alice.encrypt(&room, &body, Timestamp(0)).event.to_json());
        }
        events
    });
    let events = wall.1;
    report(
        "megolm encrypt (100-byte body, to JSON)",
        messages,
        wall.0,
        cpu,
    );
    let enc = (messages as f64 / wall.0, cpu / messages as f64);

    // Megolm decryption (each event decoded from JSON first).
    let (wall, cpu) = measure(|| {
        for (i, json) in events.iter().enumerate() {
            let event = chatus_e2ee::EncryptedEvent::from_json(json).ok()?;
            bob.decrypt(&room, &event, &i.to_string()).ok()?;
        }
        Some(())
    });
    wall.1.ok_or("a decryption failed")?;
    report("megolm decrypt (from JSON)", messages, wall.0, cpu);
    let dec = (messages as f64 / wall.0, cpu / messages as f64);

    // Sharing a room key with 100 devices.
    let mut members: Vec<Device> = (0..100)
        .map(|i| Device::new(UserId::new(format!("member{i}"))?).map_err(Into::into))
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let claimed: Vec<(DeviceKeys, SignedKey)> = members
        .iter_mut()
        .map(|m| (m.device_keys(), claim(m)))
        .collect();
    let room_key = alice.current_room_key(&room).ok_or("no room key")?;
    let mut share = |with_key: bool| {
        claimed
            .iter()
            .map(|(keys, otk)| {
                alice.encrypt_to_device(
                    keys,
                    with_key.then_some(otk),
                    ToDevicePayload::RoomKey(room_key.clone()),
                )
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let (wall_new, cpu_new) = measure(|| share(true));
    let sent = wall_new.1?;
    report(
        "room key to 100 devices, new Olm sessions",
        100,
        wall_new.0,
        cpu_new,
    );
    let (wall_again, cpu_again) = measure(|| share(false));
    wall_again.1?;
    report(
        "room key to 100 devices, existing sessions",
        100,
        wall_again.0,
        cpu_again,
    );
    let alice_keys = alice.device_keys();
    let (wall_recv, cpu_recv) = measure(|| {
        members
            .iter_mut()
            .zip(&sent)
            .map(|(m, msg)| m.decrypt_to_device(&alice_keys, msg).map(|_| ()))
            .collect::<Result<Vec<_>, _>>()
    });
    wall_recv.1?;
    report(
        "room key received (new session), per device",
        100,
        wall_recv.0,
        cpu_recv,
    );

    println!(
        "{{\"messages\":{messages},\"encrypt_per_s\":{:.0},\"encrypt_cpu_us\":{:.1},\"decrypt_per_s\":{:.0},\"decrypt_cpu_us\":{:.1},\"share_100_new_ms\":{:.1},\"share_100_existing_ms\":{:.1},\"share_100_new_cpu_ms\":{:.1},\"share_100_existing_cpu_ms\":{:.2},\"receive_key_new_session_cpu_us\":{:.0}}}",
        enc.0,
        enc.1 * 1e6,
        dec.0,
        dec.1 * 1e6,
        wall_new.0 * 1e3,
        wall_again.0 * 1e3,
        cpu_new * 1e3,
        cpu_again * 1e3,
        cpu_recv / 100.0 * 1e6,
    );
    Ok(())
}

fn claim(device: &mut Device) -> SignedKey {
    let key = device.top_up_one_time_keys(0, 1).into_iter().next();
    device.mark_published();
    key.unwrap_or_else(|| std::process::abort())
}

/// Runs `f`; returns ((wall seconds, its result), CPU seconds).
fn measure<T>(f: impl FnOnce() -> T) -> ((f64, T), f64) {
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    ((wall, out), cpu_seconds() - cpu0)
}

fn report(what: &str, n: usize, wall: f64, cpu: f64) {
    println!(
        "{what}: {n} in {:.3} s wall, {:.0}/s, {:.1} µs CPU each",
        wall,
        n as f64 / wall,
        cpu / n as f64 * 1e6
    );
}

/// CPU time of this (single-threaded) process in seconds: the main
/// thread's time on CPU from `/proc/self/schedstat` (nanoseconds), else
/// user plus system time from `/proc/self/stat` (10 ms ticks).
fn cpu_seconds() -> f64 {
    if let Some(ns) = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
    {
        return ns / 1e9;
    }
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
