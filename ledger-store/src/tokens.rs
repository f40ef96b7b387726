//! API tokens: the persistent store the server authenticates every call against (SPEC §11).
//!
//! A token is a random secret shown once, at issue, as `ldg_` + 64 lowercase hex digits. The
//! store keeps only `blake3(secret)` as the key of its record in sled's `tokens` tree, and an
//! in-memory map from that hash to the token's grant, so `authenticate` is a hash, a read lock, a
//! map lookup and a few atomics: no sled access on the hot path.
//!
//! Losses this module prevents, and how each could happen:
//!
//! - **A leaked secret.** Only its hash is stored; `Issued`'s `Debug` hides it; no error message
//!   carries it. The map compares hashes, not secrets, so its timing reveals nothing useful.
//! - **An issued token lost, or a revoke undone, by a crash.** `issue` and `revoke` flush before
//!   they return `Ok` (sled is durable only after a flush; its background flush is a timer).
//! - **A revoke lost to a concurrent write of the same record.** Every write of a record (revoke,
//!   lease) holds that token's `durable` mutex and writes the whole current state, so the last
//!   write carries both the revocation and the newest lease.
//! - **More than `max_requests` calls granted across a crash.** The call counter lives in memory;
//!   what is persisted is a *lease* ceiling: before granting call `n` above the persisted ceiling,
//!   the store persists a ceiling of `n + USED_LEASE_CALLS` (at most `max_requests`) and flushes.
//!   On open the counter restarts at the persisted ceiling, so a crash can end a token early by up
//!   to one lease, never grant it more calls. A clean shutdown persists the exact counts
//!   (`persist_usage`), so it ends no token early.
//!
//! Every call presented with a token that has `max_requests` counts, accepted or not (SPEC §11):
//! the counter moves before any verdict.
//!
//! Record format: key = the 32-byte hash; value = one format byte (`RECORD_FORMAT_V1`), then a
//! `RecordV1` in bincode 2's standard configuration. The role is stored as its own byte code,
//! not through the Rust enum's order.

use crate::disk::Disk;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ledger_core::Timestamp;
use serde::{Deserialize, Serialize};

/// What a token may call, and where (SPEC §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Everything, in every program.
    Admin,
    /// Every read and write in its one program.
    Operator,
    /// Reads only, in its one program.
    Viewer,
}

impl Role {
    /// The proto enum value name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Operator => "OPERATOR",
            Role::Viewer => "VIEWER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's public description: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Short, non-secret id (`tok_` + 12 hex digits): used to revoke the token and recorded as
    /// the actor of its events.
    pub token_id: String,
    pub role: Role,
    /// The one program an Operator or Viewer acts in; empty for Admin.
    pub program: String,
    pub name: String,
    /// The token ends when `now >= expires_at`.
    pub expires_at: Option<Timestamp>,
    /// Calls the token may be presented with, accepted or not.
    pub max_requests: Option<u64>,
    pub revoked: bool,
    pub issued_at: Timestamp,
}

/// A token's request quota (`max_requests`) and how much of it is used, for callers that show it
/// (the Echoss routes' `X-RateLimit-Limit` / `X-RateLimit-Remaining`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub max_requests: u64,
    /// Calls presented so far, never above `max_requests`. After a crash it restarts at the
    /// persisted lease ceiling, as the count the store enforces does.
    pub used: u64,
}

impl Quota {
    /// Calls the token may still be presented with.
    pub fn remaining(self) -> u64 {
        self.max_requests - self.used
    }
}

/// A newly issued token. `secret` is shown to the caller once and stored nowhere.
#[derive(Clone)]
pub struct Issued {
    pub secret: String,
    pub info: TokenInfo,
}

impl fmt::Debug for Issued {
    // Hand-written so that logging an `Issued` can never log its secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued").field("secret", &"<redacted>").field("info", &self.info).finish()
    }
}

/// Why a token was refused, or the store failed. No message contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token not recognised: present a token an admin issued, in full")]
    Unknown,
    #[error("token expired: ask an admin for a new token")]
    Expired,
    #[error("token revoked: ask an admin for a new token")]
    Revoked,
    #[error("token has used all its allowed requests: ask an admin for a new token")]
    UsedUp,
    #[error("token store failed: {0}; the call may be retried")]
    Storage(String),
}

/// Calls granted per persisted lease. Larger: fewer flushes on the hot path (one per this many
/// calls of a limited token); smaller: fewer calls a crash can take from a token. 256 keeps the
/// flushes under 1% of calls at the disk rates in NOTES.md.
pub const USED_LEASE_CALLS: u64 = 256;
const _: () = assert!(USED_LEASE_CALLS > 0);

/// The persistent token store. Share it behind an `Arc`; every method takes `&self`.
///
/// `issue`, `revoke` and, once every `USED_LEASE_CALLS` calls of a limited token,
/// `authenticate` flush sled synchronously (about 0.1 ms, more on a slow disk): from async code,
/// call `issue` and `revoke` in `spawn_blocking`.
pub struct Tokens {
    tree: sled::Tree,
    /// Flushes that make a token write durable.
    disk: Arc<Disk>,
    by_hash: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    /// Serialises `issue`, so a new token id is checked unique and inserted as one step, without
    /// holding `by_hash` across a flush.
    issue_lock: Mutex<()>,
}

impl Tokens {
    /// Opens the `tokens` tree and loads every record into memory.
    pub fn open(disk: Arc<Disk>) -> Result<Tokens, TokenError> {
        let tree = disk.db().open_tree(TREE_NAME).map_err(storage("open the tokens tree"))?;
        let mut by_hash = HashMap::new();
        for item in tree.iter() {
            let (key, value) = item.map_err(storage("read the tokens tree"))?;
            let hash: [u8; 32] = key.as_ref().try_into().map_err(|_| {
                TokenError::Storage(format!("tokens tree: a key of {} bytes, expected 32 (corrupt store)", key.len()))
            })?;
            let entry = Entry::from_record(decode_record(&value)?)?;
            by_hash.insert(hash, Arc::new(entry));
        }
        Ok(Tokens { tree, disk, by_hash: RwLock::new(by_hash), issue_lock: Mutex::new(()) })
    }

    /// True when no token was ever issued (revoked tokens still count): the server's cue to
    /// create the first admin token.
    pub fn is_empty(&self) -> bool {
        read(&self.by_hash).is_empty()
    }

    /// Issues a token; durable before it returns. `program` is ignored (stored empty) for
    /// `Role::Admin`; for the other roles the caller checks that the program exists.
    pub fn issue(
        &self,
        role: Role,
        program: &str,
        name: &str,
        expires_at: Option<Timestamp>,
        max_requests: Option<u64>,
        now: Timestamp,
    ) -> Result<Issued, TokenError> {
        let _issuing = self.issue_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let secret_bytes: [u8; 32] = rand::random();
        let secret = format!("{SECRET_PREFIX}{}", hex(&secret_bytes));
        let hash = secret_hash(&secret);
        let program = if role == Role::Admin { String::new() } else { program.to_owned() };
        let info = TokenInfo {
            token_id: self.new_token_id(),
            role,
            program,
            name: name.to_owned(),
            expires_at,
            max_requests,
            revoked: false,
            issued_at: now,
        };
        let entry = Entry::new(info.clone(), Durable { revoked: false, used_ceiling: 0 });
        let record = encode_record(&entry.record(&Durable { revoked: false, used_ceiling: 0 }))?;
        if let Err(error) = self.write_durably(&hash, record) {
            // Nobody holds this secret, but do not leave a half-written token to reappear.
            let _ = self.tree.remove(hash);
            return Err(error);
        }
        let previous = write(&self.by_hash).insert(hash, Arc::new(entry));
        assert!(previous.is_none(), "two tokens with the same 256-bit secret hash");
        Ok(Issued { secret, info })
    }

    /// Revokes a token at once; durable before it returns `Ok(true)`. `Ok(false)` if no token has
    /// that id. Revoking a revoked token writes it again, so a retry after a failed flush is safe.
    pub fn revoke(&self, token_id: &str) -> Result<bool, TokenError> {
        let found = read(&self.by_hash)
            .iter()
            .find(|(_, entry)| entry.info.token_id == token_id)
            .map(|(hash, entry)| (*hash, Arc::clone(entry)));
        let Some((hash, entry)) = found else { return Ok(false) };
        // Refuse the token in memory before the flush: a revoke takes effect at once, and if the
        // flush fails the caller sees the error and retries.
        entry.revoked.store(true, Ordering::Release);
        let mut durable = lock(&entry.durable);
        durable.revoked = true;
        self.write_durably(&hash, encode_record(&entry.record(&durable))?)?;
        Ok(true)
    }

    /// Checks a presented secret and counts the call against the token's `max_requests`.
    /// Verdicts in order: Unknown, Revoked, Expired (`expires_at <= now`), UsedUp.
    pub fn authenticate(&self, secret: &str, now: Timestamp) -> Result<TokenInfo, TokenError> {
        let hash = secret_hash(secret);
        let entry = read(&self.by_hash).get(&hash).cloned().ok_or(TokenError::Unknown)?;
        // SPEC §11: every call presented with the token counts, accepted or not, so count first.
        // Relaxed suffices: the counter orders nothing else, and fetch_add never loses a call.
        let call_number = entry.info.max_requests.map(|_| entry.used.fetch_add(1, Ordering::Relaxed) + 1);
        if entry.revoked.load(Ordering::Acquire) {
            return Err(TokenError::Revoked);
        }
        if entry.info.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(TokenError::Expired);
        }
        if let (Some(max_requests), Some(call_number)) = (entry.info.max_requests, call_number) {
            if call_number > max_requests {
                return Err(TokenError::UsedUp);
            }
            if call_number > entry.used_ceiling.load(Ordering::Acquire) {
                self.extend_lease(&hash, &entry, call_number, max_requests)?;
            }
        }
        Ok(entry.info.clone())
    }

    /// The quota of the token `secret` names, counting no call: `None` for a secret no token has,
    /// or a token without `max_requests`.
    pub fn quota(&self, secret: &str) -> Option<Quota> {
        let entry = read(&self.by_hash).get(&secret_hash(secret)).cloned()?;
        let max_requests = entry.info.max_requests?;
        // A refused call past the quota still counts, so the counter may pass max_requests.
        let used = entry.used.load(Ordering::Relaxed).min(max_requests);
        Some(Quota { max_requests, used })
    }

    /// Persists the exact call count of every limited token, for a clean shutdown: the next
    /// open resumes each counter at what is persisted, which is otherwise the lease ceiling, and
    /// a restart would take up to a lease of calls from every limited token. Lowering a ceiling to
    /// the calls presented never grants a call more, so a crash midway loses nothing. Call it once
    /// no more calls come.
    pub fn persist_usage(&self) -> Result<(), TokenError> {
        let entries: Vec<([u8; 32], Arc<Entry>)> =
            read(&self.by_hash).iter().map(|(hash, entry)| (*hash, Arc::clone(entry))).collect();
        for (hash, entry) in entries {
            let Some(max_requests) = entry.info.max_requests else { continue };
            let mut durable = lock(&entry.durable);
            let used = entry.used.load(Ordering::Relaxed).min(max_requests);
            if used >= durable.used_ceiling {
                continue;
            }
            let next = Durable { revoked: durable.revoked, used_ceiling: used };
            self.tree.insert(hash, encode_record(&entry.record(&next))?).map_err(storage("write a token"))?;
            *durable = next;
            entry.used_ceiling.store(used, Ordering::Release);
        }
        self.disk.flush().map_err(TokenError::Storage)?;
        Ok(())
    }

    /// Every token, revoked ones included, in issue order.
    pub fn list(&self) -> Vec<TokenInfo> {
        let mut infos: Vec<TokenInfo> = read(&self.by_hash).values().map(|entry| entry.info()).collect();
        // The map's hash order is arbitrary; callers and tests want a stable order.
        infos.sort_by(|a, b| (a.issued_at, &a.token_id).cmp(&(b.issued_at, &b.token_id)));
        infos
    }

    /// Every token with its quota (`None` when unlimited), revoked ones included, in issue
    /// order: what ListTokens shows, so an operator sees how much a limited token has left.
    pub fn list_with_quota(&self) -> Vec<(TokenInfo, Option<Quota>)> {
        let mut rows: Vec<(TokenInfo, Option<Quota>)> = read(&self.by_hash)
            .values()
            .map(|entry| {
                let quota = entry.info.max_requests.map(|max_requests| Quota {
                    max_requests,
                    // A refused call past the quota still counts, so the counter may pass it.
                    used: entry.used.load(Ordering::Relaxed).min(max_requests),
                });
                (entry.info(), quota)
            })
            .collect();
        rows.sort_by(|(a, _), (b, _)| (a.issued_at, &a.token_id).cmp(&(b.issued_at, &b.token_id)));
        rows
    }

    /// Persists a used ceiling covering `call_number` before that call is granted.
    fn extend_lease(
        &self,
        hash: &[u8; 32],
        entry: &Entry,
        call_number: u64,
        max_requests: u64,
    ) -> Result<(), TokenError> {
        let mut durable = lock(&entry.durable);
        // Another call may have extended the lease while this one waited for the lock.
        if call_number <= durable.used_ceiling {
            return Ok(());
        }
        assert!(call_number <= max_requests, "a lease past max_requests was asked for");
        let ceiling = call_number.saturating_add(USED_LEASE_CALLS).min(max_requests);
        let next = Durable { revoked: durable.revoked, used_ceiling: ceiling };
        self.write_durably(hash, encode_record(&entry.record(&next))?)?;
        *durable = next;
        entry.used_ceiling.store(ceiling, Ordering::Release);
        Ok(())
    }

    fn write_durably(&self, hash: &[u8; 32], record: Vec<u8>) -> Result<(), TokenError> {
        self.tree.insert(hash, record).map_err(storage("write a token"))?;
        self.disk.flush().map_err(TokenError::Storage)?;
        Ok(())
    }

    /// A fresh `tok_` + 12 hex digit id. 48 random bits make a clash unlikely; the loop makes it
    /// impossible. Called under `issue_lock`, so no other issue can take the id meanwhile.
    fn new_token_id(&self) -> String {
        let by_hash = read(&self.by_hash);
        loop {
            let id_bytes: [u8; 6] = rand::random();
            let token_id = format!("tok_{}", hex(&id_bytes));
            if !by_hash.values().any(|entry| entry.info.token_id == token_id) {
                return token_id;
            }
        }
    }
}

/// The sled tree of token records; salvage carries it over as it is.
pub const TREE_NAME: &str = "tokens";
const SECRET_PREFIX: &str = "ldg_";
const RECORD_FORMAT_V1: u8 = 1;

/// One token in memory. `info` never changes after issue (its `revoked` is as loaded; the live
/// value is `revoked`).
struct Entry {
    info: TokenInfo,
    revoked: AtomicBool,
    /// Calls presented so far (only moved for tokens with `max_requests`); restarts at the
    /// persisted `used_ceiling` on open.
    used: AtomicU64,
    /// Mirror of `durable.used_ceiling`, read lock-free on the hot path.
    used_ceiling: AtomicU64,
    /// What the store last wrote for this token; held while writing its record.
    durable: Mutex<Durable>,
}

#[derive(Clone, Copy)]
struct Durable {
    revoked: bool,
    used_ceiling: u64,
}

impl Entry {
    fn new(info: TokenInfo, durable: Durable) -> Entry {
        Entry {
            revoked: AtomicBool::new(durable.revoked),
            used: AtomicU64::new(durable.used_ceiling),
            used_ceiling: AtomicU64::new(durable.used_ceiling),
            durable: Mutex::new(durable),
            info,
        }
    }

    fn info(&self) -> TokenInfo {
        TokenInfo { revoked: self.revoked.load(Ordering::Acquire), ..self.info.clone() }
    }

    fn record(&self, durable: &Durable) -> RecordV1 {
        RecordV1 {
            token_id: self.info.token_id.clone(),
            role_code: role_code(self.info.role),
            program: self.info.program.clone(),
            name: self.info.name.clone(),
            expires_at_us: self.info.expires_at.map(Timestamp::micros),
            max_requests: self.info.max_requests,
            revoked: durable.revoked,
            issued_at_us: self.info.issued_at.micros(),
            used_ceiling: durable.used_ceiling,
        }
    }

    fn from_record(record: RecordV1) -> Result<Entry, TokenError> {
        let role = role_from_code(record.role_code).ok_or_else(|| {
            TokenError::Storage(format!(
                "token {}: unknown role code {} (corrupt store)",
                record.token_id, record.role_code
            ))
        })?;
        if record.max_requests.is_some_and(|max_requests| record.used_ceiling > max_requests) {
            return Err(TokenError::Storage(format!(
                "token {}: used ceiling above max_requests (corrupt store)",
                record.token_id
            )));
        }
        let durable = Durable { revoked: record.revoked, used_ceiling: record.used_ceiling };
        let info = TokenInfo {
            token_id: record.token_id,
            role,
            program: record.program,
            name: record.name,
            expires_at: record.expires_at_us.map(Timestamp::from_micros),
            max_requests: record.max_requests,
            revoked: record.revoked,
            issued_at: Timestamp::from_micros(record.issued_at_us),
        };
        Ok(Entry::new(info, durable))
    }
}

/// The stored record, format 1. Its own struct, so that changing `TokenInfo` cannot silently
/// change the bytes on disk.
#[derive(Serialize, Deserialize)]
struct RecordV1 {
    token_id: String,
    role_code: u8,
    program: String,
    name: String,
    expires_at_us: Option<i64>,
    max_requests: Option<u64>,
    revoked: bool,
    issued_at_us: i64,
    /// Calls the token may be granted before another lease must be persisted; the counter
    /// restarts here on open.
    used_ceiling: u64,
}

fn role_code(role: Role) -> u8 {
    // The proto's enum numbers.
    match role {
        Role::Admin => 1,
        Role::Operator => 2,
        Role::Viewer => 3,
    }
}

fn role_from_code(code: u8) -> Option<Role> {
    match code {
        1 => Some(Role::Admin),
        2 => Some(Role::Operator),
        3 => Some(Role::Viewer),
        _ => None,
    }
}

fn encode_record(record: &RecordV1) -> Result<Vec<u8>, TokenError> {
    let mut bytes = vec![RECORD_FORMAT_V1];
    let body = bincode::serde::encode_to_vec(record, bincode::config::standard())
        .map_err(|error| TokenError::Storage(format!("encode token {}: {error}", record.token_id)))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

fn decode_record(bytes: &[u8]) -> Result<RecordV1, TokenError> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err(TokenError::Storage("tokens tree: an empty record (corrupt store)".to_owned()));
    };
    if format != RECORD_FORMAT_V1 {
        return Err(TokenError::Storage(format!(
            "tokens tree: record format {format}, this build reads format {RECORD_FORMAT_V1} (a newer ledger wrote it?)"
        )));
    }
    let (record, read_len): (RecordV1, usize) =
        bincode::serde::decode_from_slice(body, crate::envelope::decode_config()).map_err(|error| {
            TokenError::Storage(format!("tokens tree: undecodable record ({error}) (corrupt store)"))
        })?;
    if read_len != body.len() {
        return Err(TokenError::Storage(format!(
            "token {}: trailing bytes in its record (corrupt store)",
            record.token_id
        )));
    }
    Ok(record)
}

fn secret_hash(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn storage(doing: &'static str) -> impl Fn(sled::Error) -> TokenError {
    move |error| TokenError::Storage(format!("{doing}: {error}"))
}

// A panic while holding one of these locks leaves consistent data behind (every critical section
// writes its state in one assignment after the fallible work), so a poisoned lock is still usable.
// In release builds panic = "abort" means there is no poisoning at all.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const NOW: Timestamp = Timestamp::from_micros(1_700_000_000_000_000);

    /// A data directory removed when the test ends, pass or fail.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!("ledger-tokens-{name}-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn open(&self) -> (sled::Db, Tokens) {
            // The store dropped just before may still hold sled's lock for a
            // moment (a job of sled's thread pool finishing): wait for it.
            let db = crate::audit::open_released(&self.0).unwrap();
            let tokens = Tokens::open(Arc::new(Disk::open(db.clone(), &self.0).unwrap())).unwrap();
            (db, tokens)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn issue_limited(tokens: &Tokens, max_requests: Option<u64>) -> Issued {
        tokens.issue(Role::Operator, "p1", "pos terminal", None, max_requests, NOW).unwrap()
    }

    /// Presents `secret` `calls` times; returns how many were granted.
    fn granted(tokens: &Tokens, secret: &str, calls: u64) -> u64 {
        let mut granted = 0;
        for _ in 0..calls {
            match tokens.authenticate(secret, NOW) {
                Ok(_) => granted += 1,
                Err(error) => assert_eq!(error, TokenError::UsedUp),
            }
        }
        granted
    }

    #[test]
    fn tokens_issue_then_authenticate() {
        let dir = TempDir::new("issue");
        let (_db, tokens) = dir.open();
        assert!(tokens.is_empty());
        let issued = tokens.issue(Role::Viewer, "p1", "dashboard", None, None, NOW).unwrap();
        assert!(!tokens.is_empty());
        assert!(issued.secret.starts_with("ldg_"));
        assert_eq!(issued.secret.len(), 4 + 64);
        assert!(issued.secret[4..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(issued.info.token_id.starts_with("tok_"));
        assert_eq!(issued.info.token_id.len(), 4 + 12);

        let info = tokens.authenticate(&issued.secret, NOW).unwrap();
        assert_eq!(info, issued.info);
        assert_eq!(info.role, Role::Viewer);
        assert_eq!(info.program, "p1");
        assert_eq!(tokens.list(), vec![issued.info.clone()]);
        assert!(!format!("{issued:?}").contains(&issued.secret));

        let admin = tokens.issue(Role::Admin, "ignored", "root", None, None, NOW).unwrap();
        assert_eq!(admin.info.program, "");
        assert_ne!(admin.secret, issued.secret);
        assert_ne!(admin.info.token_id, issued.info.token_id);
    }

    #[test]
    fn tokens_quota_reads_without_counting_and_stops_at_max() {
        let dir = TempDir::new("quota");
        let (_db, tokens) = dir.open();
        let limited = issue_limited(&tokens, Some(3));
        let unlimited = issue_limited(&tokens, None);
        assert_eq!(tokens.quota(&limited.secret), Some(Quota { max_requests: 3, used: 0 }));
        assert_eq!(tokens.quota(&limited.secret), Some(Quota { max_requests: 3, used: 0 }), "reading counts nothing");
        assert_eq!(granted(&tokens, &limited.secret, 2), 2);
        assert_eq!(tokens.quota(&limited.secret).map(Quota::remaining), Some(1));
        assert_eq!(granted(&tokens, &limited.secret, 3), 1);
        assert_eq!(tokens.quota(&limited.secret), Some(Quota { max_requests: 3, used: 3 }));
        assert_eq!(tokens.quota(&unlimited.secret), None);
        assert_eq!(tokens.quota("ldg_nope"), None);
    }

    #[test]
    fn tokens_wrong_secret_is_unknown() {
        let dir = TempDir::new("unknown");
        let (_db, tokens) = dir.open();
        let issued = issue_limited(&tokens, None);
        let mut wrong = issued.secret.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(wrong.len() - 1.., last);
        assert_eq!(tokens.authenticate(&wrong, NOW), Err(TokenError::Unknown));
        assert_eq!(tokens.authenticate("", NOW), Err(TokenError::Unknown));
        assert_eq!(tokens.authenticate(&issued.info.token_id, NOW), Err(TokenError::Unknown));
    }

    #[test]
    fn tokens_expire_at_expires_at() {
        let dir = TempDir::new("expiry");
        let (_db, tokens) = dir.open();
        let expires_at = Timestamp::from_micros(NOW.micros() + 1_000);
        let issued = tokens.issue(Role::Operator, "p1", "batch", Some(expires_at), None, NOW).unwrap();
        let just_before = Timestamp::from_micros(expires_at.micros() - 1);
        assert!(tokens.authenticate(&issued.secret, just_before).is_ok());
        assert_eq!(tokens.authenticate(&issued.secret, expires_at), Err(TokenError::Expired));
        let later = Timestamp::from_micros(expires_at.micros() + 1);
        assert_eq!(tokens.authenticate(&issued.secret, later), Err(TokenError::Expired));
    }

    #[test]
    fn tokens_revoke_is_immediate_and_survives_reopen() {
        let dir = TempDir::new("revoke");
        let (db, tokens) = dir.open();
        let kept = issue_limited(&tokens, None);
        let revoked = issue_limited(&tokens, Some(10));
        assert!(tokens.authenticate(&revoked.secret, NOW).is_ok());
        assert_eq!(tokens.revoke(&revoked.info.token_id), Ok(true));
        assert_eq!(tokens.authenticate(&revoked.secret, NOW), Err(TokenError::Revoked));
        assert_eq!(tokens.revoke(&revoked.info.token_id), Ok(true), "revoking twice is fine");
        assert_eq!(tokens.revoke("tok_000000000000"), Ok(false));
        drop(tokens);
        drop(db);

        let (_db, tokens) = dir.open();
        assert_eq!(tokens.authenticate(&revoked.secret, NOW), Err(TokenError::Revoked));
        assert!(tokens.authenticate(&kept.secret, NOW).is_ok());
        let listed = tokens.list();
        assert_eq!(listed.len(), 2);
        let listed_revoked = listed.iter().find(|info| info.token_id == revoked.info.token_id).unwrap();
        assert!(listed_revoked.revoked);
        assert_eq!(listed_revoked.name, revoked.info.name);
        assert_eq!(listed_revoked.max_requests, Some(10));
    }

    #[test]
    fn tokens_max_requests_counts_every_call() {
        let dir = TempDir::new("max");
        let (_db, tokens) = dir.open();
        let issued = issue_limited(&tokens, Some(3));
        for _ in 0..3 {
            assert!(tokens.authenticate(&issued.secret, NOW).is_ok());
        }
        assert_eq!(tokens.authenticate(&issued.secret, NOW), Err(TokenError::UsedUp));
        assert_eq!(tokens.authenticate(&issued.secret, NOW), Err(TokenError::UsedUp));

        // A refused call counts too. Expiry refuses call 2 here; the clock then steps back (an NTP
        // correction), and only one call is left.
        let expires_at = Timestamp::from_micros(NOW.micros() + 1);
        let issued = tokens.issue(Role::Viewer, "p1", "clock", Some(expires_at), Some(3), NOW).unwrap();
        assert!(tokens.authenticate(&issued.secret, NOW).is_ok());
        assert_eq!(tokens.authenticate(&issued.secret, expires_at), Err(TokenError::Expired));
        assert!(tokens.authenticate(&issued.secret, NOW).is_ok());
        assert_eq!(tokens.authenticate(&issued.secret, NOW), Err(TokenError::UsedUp));

        let none_allowed = issue_limited(&tokens, Some(0));
        assert_eq!(tokens.authenticate(&none_allowed.secret, NOW), Err(TokenError::UsedUp));
    }

    #[test]
    fn tokens_max_requests_exact_under_concurrency() {
        let dir = TempDir::new("concurrent");
        let (_db, tokens) = dir.open();
        let max_requests = 3 * USED_LEASE_CALLS + 7;
        let issued = issue_limited(&tokens, Some(max_requests));
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> =
                (0..4).map(|_| scope.spawn(|| granted(&tokens, &issued.secret, max_requests / 2))).collect();
            workers.into_iter().map(|worker| worker.join().unwrap()).sum()
        });
        assert_eq!(total, max_requests);
    }

    #[test]
    fn tokens_crash_never_grants_more_than_max_requests() {
        let dir = TempDir::new("crash");
        let max_requests = 2 * USED_LEASE_CALLS + 100;
        let secret = {
            let (_db, tokens) = dir.open();
            let issued = issue_limited(&tokens, Some(max_requests));
            assert_eq!(granted(&tokens, &issued.secret, 10), 10);
            // "Crash": drop the store and the Db with no shutdown hook.
            issued.secret
        };
        // The first call leased calls 1..=1 + USED_LEASE_CALLS; the 10 made are forgotten, the
        // rest of the lease is lost with them.
        let (db, tokens) = dir.open();
        let after_first_crash = max_requests - (1 + USED_LEASE_CALLS);
        assert_eq!(granted(&tokens, &secret, max_requests), after_first_crash);
        drop(tokens);
        drop(db);

        // Crash repeatedly mid-way; the total granted never exceeds max_requests.
        let secret = {
            let (_db, tokens) = dir.open();
            issue_limited(&tokens, Some(max_requests)).secret
        };
        let mut total = 0;
        for _ in 0..8 {
            let (_db, tokens) = dir.open();
            total += granted(&tokens, &secret, 150);
        }
        assert!(total <= max_requests, "granted {total} of {max_requests}");
        assert!(total > 0);
        let (_db, tokens) = dir.open();
        assert_eq!(tokens.authenticate(&secret, NOW), Err(TokenError::UsedUp));
    }

    #[test]
    fn tokens_clean_shutdown_keeps_every_call_left() {
        let dir = TempDir::new("shutdown");
        let max_requests = USED_LEASE_CALLS + 10;
        let secret = {
            let (_db, tokens) = dir.open();
            let issued = issue_limited(&tokens, Some(max_requests));
            assert_eq!(granted(&tokens, &issued.secret, 10), 10);
            tokens.persist_usage().unwrap();
            issued.secret
        };
        let (_db, tokens) = dir.open();
        assert_eq!(granted(&tokens, &secret, max_requests), max_requests - 10);
    }

    #[test]
    fn tokens_secret_never_reaches_disk() {
        let dir = TempDir::new("secret");
        let (db, tokens) = dir.open();
        let issued = issue_limited(&tokens, Some(1_000));
        assert_eq!(granted(&tokens, &issued.secret, 300), 300);
        let revoked = issue_limited(&tokens, None);
        tokens.revoke(&revoked.info.token_id).unwrap();
        db.flush().unwrap();
        drop(tokens);
        drop(db);

        let files = all_files(&dir.0);
        let mut on_disk = Vec::new();
        for file in &files {
            on_disk.extend(std::fs::read(file).unwrap());
        }
        // Sanity: the scan does see the records.
        assert!(contains(&on_disk, issued.info.token_id.as_bytes()), "scanned {files:?}");
        for secret in [&issued.secret, &revoked.secret] {
            assert!(!contains(&on_disk, secret.as_bytes()));
            assert!(!contains(&on_disk, &unhex(&secret[4..])));
            assert!(!contains(&on_disk, &secret.as_bytes()[4..36]), "half the hex digits");
        }
    }

    #[test]
    fn tokens_records_are_versioned() {
        let dir = TempDir::new("format");
        let (db, tokens) = dir.open();
        let issued = issue_limited(&tokens, None);
        let tree = db.open_tree(TREE_NAME).unwrap();
        let hash = secret_hash(&issued.secret);
        let stored = tree.get(hash).unwrap().unwrap();
        assert_eq!(stored[0], RECORD_FORMAT_V1);
        let mut future = stored.to_vec();
        future[0] = 2;
        tree.insert(hash, future).unwrap();
        drop(tokens);
        let disk = Arc::new(Disk::open(db.clone(), &dir.0).unwrap());
        let Err(TokenError::Storage(message)) = Tokens::open(disk) else { panic!("a format-2 record opened") };
        assert!(message.contains("record format 2"), "{message}");
    }

    fn all_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for item in std::fs::read_dir(dir).unwrap() {
                let path = item.unwrap().path();
                if path.is_dir() { pending.push(path) } else { files.push(path) }
            }
        }
        files
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|window| window == needle)
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }
}
