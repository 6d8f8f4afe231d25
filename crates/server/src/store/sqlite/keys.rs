//! The SQL of end-to-end encryption: devices and their identity keys,
//! one-time and fallback keys (claimed with `DELETE … RETURNING` on the
//! writer thread, so each is handed out once), and the per-device queue of
//! to-device messages; and encrypted conversations (a flag on the
//! conversation, set when it is created and never cleared).

use chatus_protocol::keys::{DeviceCiphertext, DeviceId};
use chatus_protocol::{RoomName, Timestamp, Visibility};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::queries::{ms, ts, username};
use crate::store::{
    ClaimedRow, DmRow, KeysStored, NewDeviceKeys, NewToDevice, RoomRow, StoreError, ToDeviceQueued,
    ToDeviceRow, UserId,
};

fn count_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn one_time_count(conn: &Connection, user: UserId, device: &str) -> Result<u32, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM one_time_keys WHERE user_id = ?1 AND device_id = ?2")?
        .query_row(params![user.0, device], |r| r.get(0))?;
    Ok(count_u32(n))
}

pub(super) fn upload_keys(conn: &Connection, k: &NewDeviceKeys) -> Result<KeysStored, StoreError> {
    let device = k.device.as_str();
    let known: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT curve25519, ed25519 FROM devices WHERE user_id = ?1 AND device_id = ?2",
        )?
        .query_row(params![k.user.0, device], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match known {
        Some((curve, ed)) if curve != k.curve25519 || ed != k.ed25519 => {
            return Ok(KeysStored::KeysChanged);
        }
        Some(_) => {}
        None => {
            conn.prepare_cached(
                "INSERT INTO devices (user_id, device_id, curve25519, ed25519, keys_json, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                k.user.0,
                device,
                k.curve25519,
                k.ed25519,
                k.keys_json,
                ms(k.time)
            ])?;
        }
    }
    let held = one_time_count(conn, k.user, device)?;
    let mut fresh = 0u32;
    for (id, _) in &k.one_time_keys {
        let stored: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM one_time_keys
                 WHERE user_id = ?1 AND device_id = ?2 AND key_id = ?3)",
            )?
            .query_row(params![k.user.0, device, id.as_str()], |r| r.get(0))?;
        fresh += u32::from(!stored);
    }
    if held.saturating_add(fresh) > k.max_one_time_keys {
        // A new device row written above stays only with a successful
        // upload: refuse by failing, so its savepoint rolls back, when it
        // was just made; otherwise nothing was written.
        if known.is_none() {
            conn.prepare_cached("DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2")?
                .execute(params![k.user.0, device])?;
        }
        return Ok(KeysStored::TooMany {
            one_time_keys: held,
        });
    }
    for (id, json) in &k.one_time_keys {
        conn.prepare_cached(
            "INSERT INTO one_time_keys (user_id, device_id, key_id, key_json)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![k.user.0, device, id.as_str(), json])?;
    }
    if let Some(json) = &k.fallback_json {
        conn.prepare_cached(
            "UPDATE devices SET fallback_json = ?3 WHERE user_id = ?1 AND device_id = ?2",
        )?
        .execute(params![k.user.0, device, json])?;
    }
    Ok(KeysStored::Stored {
        one_time_keys: held.saturating_add(fresh),
    })
}

pub(super) fn device_keys(
    conn: &Connection,
    users: &[UserId],
) -> Result<Vec<(UserId, String)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT keys_json FROM devices WHERE user_id = ?1 ORDER BY device_id")?;
    let mut out = Vec::new();
    for &user in users {
        for json in stmt.query_map([user.0], |r| r.get::<_, String>(0))? {
            out.push((user, json?));
        }
    }
    Ok(out)
}

pub(super) fn claim_keys(
    conn: &Connection,
    devices: &[(UserId, DeviceId)],
) -> Result<Vec<Option<ClaimedRow>>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for (user, device) in devices {
        let device = device.as_str();
        // The writer is the one connection that writes, and this runs in
        // its transaction: the key deleted here cannot be read by another
        // claim, which runs before or after this one.
        let taken: Option<String> = conn
            .prepare_cached(
                "DELETE FROM one_time_keys WHERE user_id = ?1 AND device_id = ?2 AND key_id =
                     (SELECT key_id FROM one_time_keys WHERE user_id = ?1 AND device_id = ?2
                      ORDER BY key_id LIMIT 1)
                 RETURNING key_json",
            )?
            .query_row(params![user.0, device], |r| r.get(0))
            .optional()?;
        let remaining = one_time_count(conn, *user, device)?;
        let claimed = match taken {
            Some(key_json) => Some(ClaimedRow {
                key_json,
                fallback: false,
                remaining,
            }),
            None => conn
                .prepare_cached(
                    "SELECT fallback_json FROM devices WHERE user_id = ?1 AND device_id = ?2",
                )?
                .query_row(params![user.0, device], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten()
                .map(|key_json| ClaimedRow {
                    key_json,
                    fallback: true,
                    remaining,
                }),
        };
        out.push(claimed);
    }
    Ok(out)
}

pub(super) fn queue_to_device(
    conn: &Connection,
    messages: &[NewToDevice],
    cap: u32,
) -> Result<ToDeviceQueued, StoreError> {
    let mut queued: std::collections::HashMap<(UserId, &str), i64> = Default::default();
    for (i, m) in messages.iter().enumerate() {
        let key = (m.user, m.device.as_str());
        let n = match queued.get(&key) {
            Some(n) => *n,
            None => {
                let exists: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM devices WHERE user_id = ?1 AND device_id = ?2)",
                    )?
                    .query_row(params![m.user.0, key.1], |r| r.get(0))?;
                if !exists {
                    return Ok(ToDeviceQueued::UnknownDevice(i));
                }
                conn.prepare_cached(
                    "SELECT count(*) FROM to_device WHERE user_id = ?1 AND device_id = ?2",
                )?
                .query_row(params![m.user.0, key.1], |r| r.get(0))?
            }
        };
        if n >= i64::from(cap) {
            return Ok(ToDeviceQueued::QueueFull(i));
        }
        queued.insert(key, n + 1);
    }
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let id: i64 = conn
            .prepare_cached(
                "INSERT INTO to_device (user_id, device_id, sender_id, sender_device, ciphertext, time_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )?
            .query_row(
                params![
                    m.user.0,
                    m.device.as_str(),
                    m.sender.0,
                    m.sender_device.as_str(),
                    m.ciphertext.as_str(),
                    ms(m.time)
                ],
                |r| r.get(0),
            )?;
        ids.push(u64::try_from(id).unwrap_or(0));
    }
    Ok(ToDeviceQueued::Stored(ids))
}

pub(super) fn delete_device(
    conn: &Connection,
    user: UserId,
    device: &DeviceId,
) -> Result<bool, StoreError> {
    // The writer's transaction makes the three deletions one.
    for sql in [
        "DELETE FROM one_time_keys WHERE user_id = ?1 AND device_id = ?2",
        "DELETE FROM to_device WHERE user_id = ?1 AND device_id = ?2",
    ] {
        conn.prepare_cached(sql)?
            .execute(params![user.0, device.as_str()])?;
    }
    let deleted = conn
        .prepare_cached("DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2")?
        .execute(params![user.0, device.as_str()])?;
    Ok(deleted > 0)
}

pub(super) fn fetch_to_device(
    conn: &Connection,
    user: UserId,
    device: &DeviceId,
    after: u64,
    limit: u32,
) -> Result<(Vec<ToDeviceRow>, bool), StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM to_device WHERE user_id = ?1 AND device_id = ?2 AND id <= ?3",
    )?
    .execute(params![user.0, device.as_str(), after])?;
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, u.name, t.sender_device, t.ciphertext, t.time_ms
         FROM to_device t JOIN users u ON u.id = t.sender_id
         WHERE t.user_id = ?1 AND t.device_id = ?2 AND t.id > ?3
         ORDER BY t.id LIMIT ?4",
    )?;
    let raw: Vec<(i64, String, String, String, i64)> = stmt
        .query_map(
            params![user.0, device.as_str(), after, i64::from(limit) + 1],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .collect::<Result<_, _>>()?;
    let more = raw.len() > limit as usize;
    let mut rows = Vec::with_capacity(raw.len());
    for (id, sender, sender_device, ciphertext, time) in raw.into_iter().take(limit as usize) {
        rows.push(ToDeviceRow {
            id: u64::try_from(id).unwrap_or(0),
            sender: username(sender)?,
            sender_device: DeviceId::parse(sender_device)
                .map_err(|e| StoreError::Corrupt(e.message))?,
            ciphertext: DeviceCiphertext::parse(ciphertext)
                .map_err(|e| StoreError::Corrupt(e.message))?,
            time: ts(time),
        });
    }
    Ok((rows, more))
}

pub(super) fn create_encrypted_room(
    conn: &Connection,
    name: &RoomName,
    creator: UserId,
    time: Timestamp,
) -> Result<RoomRow, StoreError> {
    let row = super::queries::create_room(conn, name, Visibility::Private, creator, time)?;
    conn.prepare_cached("UPDATE conversations SET encrypted = 1 WHERE id = ?1")?
        .execute([row.id.0])?;
    Ok(row)
}

pub(super) fn open_dm_encrypted(
    conn: &Connection,
    a: UserId,
    b: UserId,
    time: Timestamp,
    encrypt: bool,
) -> Result<(DmRow, bool), StoreError> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let existed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE kind = 'dm' AND user_a = ?1 AND user_b = ?2)",
        )?
        .query_row(params![lo.0, hi.0], |r| r.get(0))?;
    let row = super::queries::open_dm(conn, a, b, time)?;
    if encrypt && !existed {
        conn.prepare_cached("UPDATE conversations SET encrypted = 1 WHERE id = ?1")?
            .execute([row.id.0])?;
    }
    let encrypted: bool = conn
        .prepare_cached("SELECT encrypted <> 0 FROM conversations WHERE id = ?1")?
        .query_row([row.id.0], |r| r.get(0))?;
    Ok((row, encrypted))
}
