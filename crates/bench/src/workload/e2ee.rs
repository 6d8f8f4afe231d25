//! Workload 18: what end-to-end encryption costs a device, with the
//! client's own crypto (`chatus-e2ee`, vodozemac underneath) in this
//! process: no server, since the server only relays ciphertext (its cost
//! per message is workload 8's with a longer body).
//!
//! - **Megolm, per message**: one device encrypts `messages` messages of
//!   `--body` bytes for a conversation and encodes each as the client sends
//!   it; another device decodes and decrypts them all. The session is not
//!   rotated during the run (rotation is a key share, measured below).
//! - **The reference, in the same run**: encoding the same messages as
//!   plain `send` frames and decoding them again (serde_json), which every
//!   message costs a client without encryption.
//! - **Key share to a room of `devices` member devices**: the sender starts
//!   a Megolm session and Olm-encrypts its key for each device, first with
//!   new Olm sessions (one claimed one-time key each: a new room, or the
//!   first message to new members), then again over the sessions now
//!   established (a rotation: after 100 messages, a week, or a member
//!   leaving); each recipient decrypts its copy and installs the key.
//!
//! CPU is this process's (user and system), read from `/proc` around each
//! phase; each phase runs long enough for the 10 ms tick not to matter.

use std::time::Instant;

use anyhow::Context as _;
use chatus_e2ee::{
    ConversationId, Device, DeviceKeys, EncryptedEvent, RotationPolicy, SignedKey, Timestamp,
    ToDeviceMessage, ToDevicePayload, UserId,
};
use serde_json::{Value, json};

use crate::proc::cpu_seconds;

/// The workload's size.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Messages encrypted and decrypted.
    pub messages: usize,
    /// Member devices a room key is shared with.
    pub devices: usize,
    /// How many times the key is shared, over new sessions and again over
    /// established ones.
    pub share_rounds: usize,
}

/// CPU seconds of this process so far.
fn cpu() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Runs `f`, returning its result, wall seconds and CPU seconds.
fn measured<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, f64)> {
    let (c0, t0) = (cpu(), Instant::now());
    let out = f()?;
    Ok((out, t0.elapsed().as_secs_f64(), cpu() - c0))
}

/// `n` per second over `secs`, and microseconds of CPU per item.
fn rates(n: usize, secs: f64, cpu: f64) -> Value {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    json!({
        "per_sec": if secs > 0.0 { n / secs } else { 0.0 },
        "cpu_us_each": if n > 0.0 { cpu * 1e6 / n } else { 0.0 },
        "secs": secs,
        "cpu_secs": cpu,
    })
}

/// The body of message `i`, `len` bytes of text.
fn body(i: usize, len: usize) -> String {
    let mut s = format!("message {i} ");
    while s.len() < len {
        s.push_str("lorem ipsum ");
    }
    s.truncate(len.max(1));
    s
}

/// A device and the keys the server would hand out for it.
fn member(i: usize) -> anyhow::Result<(Device, DeviceKeys, SignedKey)> {
    let mut d = Device::new(UserId::new(format!("member{i}"))?)?;
    let keys = d.device_keys();
    let otk = d
        .top_up_one_time_keys(0, 1)
        .pop()
        .context("no one-time key made")?;
    d.mark_published();
    Ok((d, keys, otk))
}

/// Workload 18 (`e2ee`): one record, `"workload": "e2ee"`.
pub fn costs(shape: Shape, body_len: usize) -> anyhow::Result<Value> {
    let now = Timestamp(1_800_000_000_000);
    let room = ConversationId::new("bench")?;
    let bodies: Vec<String> = (0..shape.messages).map(|i| body(i, body_len)).collect();

    // The reference: plain `send` frames, encoded and decoded, the whole
    // set again until a second has passed (it is fast).
    let (reference_n, ref_enc_secs, ref_enc_cpu) = measured(|| {
        let t = Instant::now();
        let mut n = 0usize;
        while n == 0 || t.elapsed().as_secs_f64() < 1.0 {
            let mut frames = Vec::with_capacity(bodies.len());
            for (i, b) in bodies.iter().enumerate() {
                frames.push(
                    json!({"type": "send", "room": "bench", "body": b, "client_id": format!("c{i}")})
                        .to_string(),
                );
            }
            let mut total = 0usize;
            for f in &frames {
                let v: Value = serde_json::from_str(f)?;
                total += v["body"].as_str().map_or(0, str::len);
            }
            anyhow::ensure!(total > 0, "nothing decoded");
            n += frames.len();
        }
        Ok(n)
    })?;

    // Megolm: one sender, one reader.
    let mut alice = Device::new(UserId::new("alice")?)?;
    alice.set_rotation_policy(RotationPolicy {
        max_messages: u32::MAX,
        max_age_ms: u64::MAX,
    });
    let (mut bob, bob_keys, bob_otk) = member(0)?;
    let first = alice.encrypt(&room, "hello", now);
    let key = first
        .new_room_key
        .context("the first message made no key")?;
    let to_bob =
        alice.encrypt_to_device(&bob_keys, Some(&bob_otk), ToDevicePayload::RoomKey(key))?;
    bob.decrypt_to_device(&alice.device_keys(), &to_bob)?;
    let (wire, enc_secs, enc_cpu) = measured(|| {
        let mut wire = Vec::with_capacity(bodies.len());
        for b in &bodies {
            let out = alice.encrypt(&room, b, now);
            anyhow::ensure!(out.new_room_key.is_none(), "rotated during the run");
            wire.push(out.event.to_json());
        }
        Ok(wire)
    })?;
    let ciphertext_bytes: usize = wire.iter().map(String::len).sum();
    let (_, dec_secs, dec_cpu) = measured(|| {
        for (i, w) in wire.iter().enumerate() {
            let event = EncryptedEvent::from_json(w)?;
            let read = bob.decrypt(&room, &event, &i.to_string())?;
            anyhow::ensure!(read.body == bodies[i], "message {i} read back wrong");
        }
        Ok(())
    })?;

    // Key share to a room of member devices: `rounds` times over new Olm
    // sessions (a new sender device each round, so that each share
    // starts sessions from claimed one-time keys), then as many times over
    // the sessions of the last round (rotations).
    let rounds = shape.share_rounds.max(1);
    let mut members = Vec::with_capacity(shape.devices);
    for i in 0..shape.devices {
        let (mut d, keys, _) = member(i + 1)?;
        let otks = d.top_up_one_time_keys(0, rounds);
        anyhow::ensure!(otks.len() >= rounds, "too few one-time keys");
        d.mark_published();
        members.push((d, keys, otks));
    }
    let share_room = ConversationId::new("shared")?;
    let (mut new_cpu, mut new_secs, mut new_recv_cpu) = (0.0, 0.0, 0.0);
    let (mut again_cpu, mut again_secs, mut again_recv_cpu) = (0.0, 0.0, 0.0);
    let mut sender = Device::new(UserId::new("sender")?)?;
    for round in 0..rounds * 6 {
        let fresh = round < rounds;
        if fresh {
            sender = Device::new(UserId::new("sender")?)?;
        } else {
            sender.members_changed(&share_room);
        }
        let key = sender
            .encrypt(&share_room, "rotate", now)
            .new_room_key
            .context("no new key")?;
        let (sent, secs, cpu) = measured(|| {
            let mut sent = Vec::with_capacity(members.len());
            for (_, keys, otks) in &members {
                let claimed = fresh.then(|| &otks[round]);
                let m = sender.encrypt_to_device(
                    keys,
                    claimed,
                    ToDevicePayload::RoomKey(key.clone()),
                )?;
                sent.push(serde_json::to_string(&m)?);
            }
            Ok(sent)
        })?;
        let from = sender.device_keys();
        let (_, _, recv_cpu) = measured(|| {
            for ((device, _, _), m) in members.iter_mut().zip(&sent) {
                let m: ToDeviceMessage = serde_json::from_str(m)?;
                device.decrypt_to_device(&from, &m)?;
            }
            Ok(())
        })?;
        if fresh {
            (new_secs, new_cpu, new_recv_cpu) =
                (new_secs + secs, new_cpu + cpu, new_recv_cpu + recv_cpu);
        } else {
            (again_secs, again_cpu, again_recv_cpu) = (
                again_secs + secs,
                again_cpu + cpu,
                again_recv_cpu + recv_cpu,
            );
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let per_device = |cpu: f64, rounds: usize| cpu * 1e6 / (shape.devices.max(1) * rounds) as f64;
    #[allow(clippy::cast_precision_loss)]
    let per_round = |secs: f64, rounds: usize| secs * 1e3 / rounds as f64;

    let encode = rates(reference_n, ref_enc_secs, ref_enc_cpu);
    let encrypt = rates(shape.messages, enc_secs, enc_cpu);
    let decrypt = rates(shape.messages, dec_secs, dec_cpu);
    let ratio = |a: &Value| {
        let r = encode["cpu_us_each"].as_f64().unwrap_or(0.0);
        a["cpu_us_each"]
            .as_f64()
            .map_or(0.0, |x| if r > 0.0 { x / r } else { 0.0 })
    };
    Ok(json!({
        "workload": "e2ee",
        "messages": shape.messages,
        "body_bytes": body_len,
        "ciphertext_bytes_each": ciphertext_bytes / shape.messages.max(1),
        "plain_encode_decode": encode,
        "megolm_encrypt": encrypt,
        "megolm_decrypt": decrypt,
        "encrypt_vs_plain_cpu": ratio(&encrypt),
        "decrypt_vs_plain_cpu": ratio(&decrypt),
        "devices": shape.devices,
        "share_rounds": rounds,
        "share_new_sessions": {
            "ms_per_share": per_round(new_secs, rounds),
            "sender_cpu_us_per_device": per_device(new_cpu, rounds),
            "recipient_cpu_us_each": per_device(new_recv_cpu, rounds),
        },
        "share_existing_sessions": {
            "ms_per_share": per_round(again_secs, rounds * 5),
            "sender_cpu_us_per_device": per_device(again_cpu, rounds * 5),
            "recipient_cpu_us_each": per_device(again_recv_cpu, rounds * 5),
        },
    }))
}
