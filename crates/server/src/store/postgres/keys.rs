//! End-to-end encryption on PostgreSQL: devices, one-time and fallback
//! keys, and the to-device queue (the same rules as SQLite's
//! `store/sqlite/keys.rs`).
//!
//! A one-time key is handed out once even when nodes claim at the same
//! time: the claim deletes the row it picked with `FOR UPDATE SKIP LOCKED`
//! (`DELETE … WHERE ctid = (SELECT ctid … FOR UPDATE SKIP LOCKED)
//! RETURNING`), so a row another claim has locked is passed over, not
//! waited for and handed out a second time after that claim commits.
//! Queue caps are counted before the insert; two nodes queueing for one
//! device at the same instant may pass the cap by the size of their
//! batches, which still bounds the queue.

use chatus_protocol::keys::{DeviceCiphertext, DeviceId};
use chatus_protocol::{RoomName, Timestamp, Visibility};

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, ts, username};
use crate::store::{
    ClaimedRow, DmRow, KeysStored, NewDeviceKeys, NewToDevice, RoomRow, StoreError, ToDeviceQueued,
    ToDeviceRow, UserId,
};

fn count_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

async fn one_time_count(c: &Conn, user: UserId, device: &str) -> Result<u32, StoreError> {
    let row = c
        .query_opt(
            "SELECT count(*) FROM one_time_keys WHERE user_id = $1 AND device_id = $2",
            &[&user.0, &device],
        )
        .await?;
    Ok(count_u32(row.map_or(0, |r| r.get(0))))
}

pub(crate) async fn upload_keys(c: &Conn, k: &NewDeviceKeys) -> Result<KeysStored, StoreError> {
    let device = k.device.as_str();
    let time = ms(k.time);
    let made = c
        .exec(
            "INSERT INTO devices (user_id, device_id, curve25519, ed25519, keys_json, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &k.user.0,
                &device,
                &k.curve25519,
                &k.ed25519,
                &k.keys_json,
                &time,
            ],
        )
        .await?
        == 1;
    if !made {
        let row = c
            .query_opt(
                "SELECT curve25519, ed25519 FROM devices WHERE user_id = $1 AND device_id = $2",
                &[&k.user.0, &device],
            )
            .await?
            .ok_or(StoreError::NotFound("device"))?;
        let (curve, ed): (String, String) = (row.get(0), row.get(1));
        if curve != k.curve25519 || ed != k.ed25519 {
            return Ok(KeysStored::KeysChanged);
        }
    }
    let held = one_time_count(c, k.user, device).await?;
    let ids: Vec<&str> = k.one_time_keys.iter().map(|(id, _)| id.as_str()).collect();
    let known = c
        .query_opt(
            "SELECT count(*) FROM one_time_keys
             WHERE user_id = $1 AND device_id = $2 AND key_id = ANY($3)",
            &[&k.user.0, &device, &ids],
        )
        .await?
        .map_or(0, |r| r.get::<_, i64>(0));
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let fresh = count_u32(i64::try_from(distinct.len()).unwrap_or(i64::MAX) - known);
    if held.saturating_add(fresh) > k.max_one_time_keys {
        if made {
            c.exec(
                "DELETE FROM devices WHERE user_id = $1 AND device_id = $2",
                &[&k.user.0, &device],
            )
            .await?;
        }
        return Ok(KeysStored::TooMany {
            one_time_keys: held,
        });
    }
    for (id, json) in &k.one_time_keys {
        c.exec(
            "INSERT INTO one_time_keys (user_id, device_id, key_id, key_json)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&k.user.0, &device, &id.as_str(), json],
        )
        .await?;
    }
    if let Some(json) = &k.fallback_json {
        c.exec(
            "UPDATE devices SET fallback_json = $3 WHERE user_id = $1 AND device_id = $2",
            &[&k.user.0, &device, json],
        )
        .await?;
    }
    Ok(KeysStored::Stored {
        one_time_keys: held.saturating_add(fresh),
    })
}

pub(crate) async fn device_keys(
    c: &Conn,
    users: &[UserId],
) -> Result<Vec<(UserId, String)>, StoreError> {
    let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let rows = c
        .query(
            "SELECT user_id, keys_json FROM devices WHERE user_id = ANY($1)
             ORDER BY user_id, device_id",
            &[&ids],
        )
        .await?;
    let mut found: Vec<(UserId, String)> =
        rows.iter().map(|r| (UserId(r.get(0)), r.get(1))).collect();
    // In the order asked, as SQLite answers.
    let mut out = Vec::with_capacity(found.len());
    for u in users {
        out.extend(found.iter().filter(|(id, _)| id == u).cloned());
    }
    found.clear();
    Ok(out)
}

pub(crate) async fn claim_keys(
    c: &Conn,
    devices: &[(UserId, DeviceId)],
) -> Result<Vec<Option<ClaimedRow>>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for (user, device) in devices {
        let device = device.as_str();
        let taken: Option<String> = c
            .query_opt(
                "DELETE FROM one_time_keys WHERE ctid =
                     (SELECT ctid FROM one_time_keys WHERE user_id = $1 AND device_id = $2
                      ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING key_json",
                &[&user.0, &device],
            )
            .await?
            .map(|r| r.get(0));
        let remaining = one_time_count(c, *user, device).await?;
        let claimed = match taken {
            Some(key_json) => Some(ClaimedRow {
                key_json,
                fallback: false,
                remaining,
            }),
            None => c
                .query_opt(
                    "SELECT fallback_json FROM devices WHERE user_id = $1 AND device_id = $2",
                    &[&user.0, &device],
                )
                .await?
                .and_then(|r| r.get::<_, Option<String>>(0))
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

pub(crate) async fn queue_to_device(
    c: &Conn,
    messages: &[NewToDevice],
    cap: u32,
) -> Result<ToDeviceQueued, StoreError> {
    let mut queued: std::collections::HashMap<(UserId, &str), i64> = Default::default();
    for (i, m) in messages.iter().enumerate() {
        let key = (m.user, m.device.as_str());
        let n = match queued.get(&key) {
            Some(n) => *n,
            None => {
                let exists = c
                    .query_opt(
                        "SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2",
                        &[&m.user.0, &key.1],
                    )
                    .await?
                    .is_some();
                if !exists {
                    return Ok(ToDeviceQueued::UnknownDevice(i));
                }
                c.query_opt(
                    "SELECT count(*) FROM to_device WHERE user_id = $1 AND device_id = $2",
                    &[&m.user.0, &key.1],
                )
                .await?
                .map_or(0, |r| r.get::<_, i64>(0))
            }
        };
        if n >= i64::from(cap) {
            return Ok(ToDeviceQueued::QueueFull(i));
        }
        queued.insert(key, n + 1);
    }
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let row = c
            .query_opt(
                "INSERT INTO to_device (user_id, device_id, sender_id, sender_device, ciphertext, time_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &m.user.0,
                    &m.device.as_str(),
                    &m.sender.0,
                    &m.sender_device.as_str(),
                    &m.ciphertext.as_str(),
                    &ms(m.time),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound("to-device message"))?;
        ids.push(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
    }
    Ok(ToDeviceQueued::Stored(ids))
}

pub(crate) async fn delete_device(
    c: &Conn,
    user: UserId,
    device: &DeviceId,
) -> Result<bool, StoreError> {
    // The writer's transaction makes the three deletions one.
    let device = device.as_str();
    for sql in [
        "DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2",
        "DELETE FROM to_device WHERE user_id = $1 AND device_id = $2",
    ] {
        c.exec(sql, &[&user.0, &device]).await?;
    }
    let deleted = c
        .exec(
            "DELETE FROM devices WHERE user_id = $1 AND device_id = $2",
            &[&user.0, &device],
        )
        .await?;
    Ok(deleted > 0)
}

pub(crate) async fn fetch_to_device(
    c: &Conn,
    user: UserId,
    device: &DeviceId,
    after: u64,
    limit: u32,
) -> Result<(Vec<ToDeviceRow>, bool), StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let device = device.as_str();
    c.exec(
        "DELETE FROM to_device WHERE user_id = $1 AND device_id = $2 AND id <= $3",
        &[&user.0, &device, &after],
    )
    .await?;
    let rows = c
        .query(
            "SELECT t.id, u.name, t.sender_device, t.ciphertext, t.time_ms
             FROM to_device t JOIN users u ON u.id = t.sender_id
             WHERE t.user_id = $1 AND t.device_id = $2 AND t.id > $3
             ORDER BY t.id LIMIT $4",
            &[&user.0, &device, &after, &(i64::from(limit) + 1)],
        )
        .await?;
    let more = rows.len() > limit as usize;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().take(limit as usize) {
        out.push(ToDeviceRow {
            id: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            sender: username(r.get(1))?,
            sender_device: DeviceId::parse(r.get::<_, String>(2))
                .map_err(|e| StoreError::Corrupt(e.message))?,
            ciphertext: DeviceCiphertext::parse(r.get::<_, String>(3))
                .map_err(|e| StoreError::Corrupt(e.message))?,
            time: ts(r.get(4)),
        });
    }
    Ok((out, more))
}

pub(crate) async fn create_encrypted_room(
    c: &Conn,
    name: &RoomName,
    creator: UserId,
    time: Timestamp,
) -> Result<RoomRow, StoreError> {
    let row = super::rooms::create_room(c, name, Visibility::Private, creator, time).await?;
    c.exec(
        "UPDATE conversations SET encrypted = true WHERE id = $1",
        &[&row.id.0],
    )
    .await?;
    Ok(row)
}

pub(crate) async fn open_dm_encrypted(
    c: &Conn,
    a: UserId,
    b: UserId,
    time: Timestamp,
    encrypt: bool,
) -> Result<(DmRow, bool), StoreError> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let existed = c
        .query_opt(
            "SELECT 1 FROM conversations WHERE kind = 'dm' AND user_a = $1 AND user_b = $2",
            &[&lo.0, &hi.0],
        )
        .await?
        .is_some();
    let row = super::rooms::open_dm(c, a, b, time).await?;
    if encrypt && !existed {
        // Another node may have made it meanwhile, plain: only a
        // conversation without messages yet is marked.
        c.exec(
            "UPDATE conversations SET encrypted = true WHERE id = $1 AND last_seq = 0",
            &[&row.id.0],
        )
        .await?;
    }
    let encrypted: bool = c
        .query_opt(
            "SELECT encrypted FROM conversations WHERE id = $1",
            &[&row.id.0],
        )
        .await?
        .is_some_and(|r| r.get(0));
    Ok((row, encrypted))
}
