//! Every limit the ledger enforces, in one place, so that users can read them and the
//! relations between them are checked when the crate compiles.

/// Points one add may carry (SPEC §3).
pub const POINTS_PER_ADD_MAX: u64 = 1_000_000;
/// Points one use may take: any balance a reply can show (`int64`), so that
/// no use is refused for its size, only for the balance.
pub const USE_POINTS_MAX: u64 = i64::MAX as u64;
/// Items in one bulk add or bulk use (Loga `bulk_add_point`).
pub const BULK_ITEMS_MAX: usize = 1_000;
/// Bytes in any id: program, member, formula, reward, reference, branch code.
pub const ID_BYTES_MAX: usize = 128;
/// Bytes in a name.
pub const NAME_BYTES_MAX: usize = 255;
/// Bytes in a remark or private remark.
pub const REMARK_BYTES_MAX: usize = 1_024;
/// Decimal places a formula multiplier or a cost may carry.
pub const DECIMAL_SCALE_MAX: u32 = 4;
/// Lots one expiry sweep command expires at most, so that one sweep never makes a
/// commit group large enough to stall the writers behind it.
pub const EXPIRY_SWEEP_LOTS_MAX: usize = 1_000;
/// Statements in one voucher or point-statement import (Echoss `data[]`).
pub const IMPORT_ITEMS_MAX: usize = 1_000;
/// Member cards a program may hold (Echoss member-cards).
pub const MEMBER_CARDS_MAX: usize = 5;
/// Members one SetMemberLevels batch may name.
pub const LEVELS_ITEMS_MAX: usize = 1_000;
/// Rows of a voucher report page when the caller gives none, and at most.
pub const REPORT_PAGE_SIZE_DEFAULT: usize = 20;
pub const REPORT_PAGE_SIZE_MAX: usize = 100;
/// Index steps a voucher report's walk takes before a scan of the page is the
/// cheaper way: a step costs several times a scanned row, and a scan of 100,000
/// rows takes a few hundred microseconds.
pub const REPORT_WALK_STEPS_MAX: usize = 4_096;
/// Credit amounts carry at most this many decimal places; balances are kept
/// exactly in units of 10^-CREDIT_SCALE.
pub const CREDIT_SCALE: u32 = 4;
/// A credit add or use is more than 0 and at most this many credits.
pub const CREDITS_PER_CHANGE_MAX: u64 = 1_000_000;
/// The most a credit wallet may hold, in units of 10^-CREDIT_SCALE: what an
/// `i64` holds, so that every balance has an exact decimal and fits a signed
/// 64-bit column downstream.
pub const CREDIT_BALANCE_UNITS_MAX: u64 = i64::MAX as u64;
/// Coupons one grant may add.
pub const COUPONS_PER_GRANT_MAX: u32 = 10_000;
/// The largest request the server decodes, in bytes (gRPC's own default is 4 MiB):
/// a 1,000-item bulk or import with long remarks fits well within it.
pub const REQUEST_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The largest HTTP/JSON request body the server reads, in bytes: JSON spells out
/// every field name and escapes strings, so the same request takes more room than
/// in protobuf; the protobuf it becomes must still fit `REQUEST_BYTES_MAX`.
pub const JSON_REQUEST_BYTES_MAX: usize = 2 * REQUEST_BYTES_MAX;
/// Members of a ListMembers page when the caller gives no page size, and at most.
pub const MEMBERS_PAGE_SIZE_DEFAULT: usize = 10;
pub const MEMBERS_PAGE_SIZE_MAX: usize = 100;
/// How long a hold lasts when the caller names no `expires_at` (SPEC §14): a card
/// terminal's authorization, not a reservation.
pub const HOLD_EXPIRY_DEFAULT_MICROS: i64 = 15 * 60 * 1_000_000;
/// How far ahead a hold may expire at most, so that held points cannot be
/// parked out of the member's reach for good.
pub const HOLD_EXPIRY_MAX_MICROS: i64 = 30 * 24 * 60 * 60 * 1_000_000;
/// Holds of a ListHolds page when the caller gives no page size, and at most.
pub const HOLDS_PAGE_SIZE_DEFAULT: usize = 10;
pub const HOLDS_PAGE_SIZE_MAX: usize = 100;
/// Activities of a ListActivities page when the caller gives no page size, and at most.
pub const ACTIVITIES_PAGE_SIZE_DEFAULT: usize = 10;
pub const ACTIVITIES_PAGE_SIZE_MAX: usize = 100;
/// Lots of a ListExpiringPoints page when the caller gives no page size, and at most.
pub const EXPIRING_PAGE_SIZE_DEFAULT: usize = 10;
pub const EXPIRING_PAGE_SIZE_MAX: usize = 100;
/// Entries of ListActivities `kinds[]`: there are five kinds, so more is a mistake.
pub const ACTIVITY_KINDS_MAX: usize = 5;
/// Bytes of a page token: a member page token is the hex of a member id.
pub const PAGE_TOKEN_BYTES_MAX: usize = 2 * ID_BYTES_MAX;
/// Events a GetMember `as_of` folds at most past the member's latest snapshot: a
/// fold leaves one every this many events (`ledger_store::history`). About 1 µs an
/// event (2.3 µs when each is its own log record), so at most ~0.6 ms of folding,
/// against 10–25 ms for 10,000 events from scratch; a snapshot is ~100 bytes.
pub const HISTORY_SNAPSHOT_EVENTS: usize = 256;
/// Bytes of a ListExpiringPoints page token: the last lot's time and id (at most 20
/// digits each, and a separator each) before the hex of its member id.
pub const EXPIRING_PAGE_TOKEN_BYTES_MAX: usize = PAGE_TOKEN_BYTES_MAX + 42;
/// The points balance (and qualifying amount) a member may reach: replies carry it
/// as an `int64`, so a larger balance could not be shown, only wrapped or clamped.
pub const POINTS_BALANCE_MAX: u64 = i64::MAX as u64;
/// The range of google.protobuf.Timestamp, which every time the ledger takes must
/// fit so that every reply's timestamps are valid for standard clients:
/// 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z.
pub const TIMESTAMP_SECONDS_MIN: i64 = -62_135_596_800;
pub const TIMESTAMP_SECONDS_MAX: i64 = 253_402_300_799;
pub const TIMESTAMP_NANOS_MAX: i32 = 999_999_999;
/// Bytes a stored value (a log record, a checkpoint row, a token) may claim for its
/// strings when it is decoded. A length prefix is trusted only this far: a
/// corrupt one (the fuzzer's first find) otherwise made bincode allocate what it
/// said, a capacity-overflow panic or an abort for lack of memory. The largest
/// record the writer makes (a 1,000-item bulk, an import of 1,000 statements) is
/// a few MiB.
pub const STORED_VALUE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Events one command may produce: a bulk of `BULK_ITEMS_MAX` items, each possibly
/// preceded by nothing else; a replacement makes two.
pub const COMMAND_EVENTS_MAX: usize = 2 * BULK_ITEMS_MAX;

// The store's write path (`ledger_store::Options` defaults; tests shrink them so
// that batching and checkpoints run all the time).

/// Commands waiting for the writer at most; callers wait beyond that.
pub const QUEUE_COMMANDS_MAX: usize = 4_096;
/// Commands one commit group takes at most.
pub const GROUP_COMMANDS_MAX: usize = 1_024;
/// Events between checkpoints (ARCHITECTURE.md: the worst replay after a crash
/// against the checkpoint's stall).
pub const CHECKPOINT_EVENTS: u64 = 500_000;
/// Rows changed since the last checkpoint that make one due, so that one
/// checkpoint batch (and sled's garbage from it) stays bounded.
pub const CHECKPOINT_ROWS_MAX: usize = 20_000;

// What one caller may cost the server (`ledgerd`). The counts are defaults of
// `ledgerd` flags; a caller beyond one gets RESOURCE_EXHAUSTED with a
// `google.rpc.ErrorInfo` reason, or waits (connections, per-connection requests).

/// Open client connections. Beyond it the server stops accepting and new
/// connections wait in the kernel's listen queue until one closes. `ledgerd`
/// lowers it to fit its descriptor limit, keeping `DESCRIPTORS_RESERVED`.
pub const CONNECTIONS_MAX: usize = 1_024;
/// Descriptors `ledgerd` keeps for its store (sled's files, blob files, the
/// inotify watch) and logs when it fits `CONNECTIONS_MAX` under its limit.
pub const DESCRIPTORS_RESERVED: u64 = 64;
/// Calls being handled in the whole server (a stream counts until it opens, then
/// against `STREAMS_MAX`). Beyond it: RESOURCE_EXHAUSTED `TOO_MANY_REQUESTS`.
pub const REQUESTS_MAX: usize = 4_096;
/// Concurrent calls on one connection: HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`,
/// so a client queues its own calls beyond it.
pub const REQUESTS_PER_CONNECTION_MAX: u32 = 256;
/// Open event streams (StreamEvents, ReadEvents, Backup) in the server, and per token. Beyond either:
/// RESOURCE_EXHAUSTED `TOO_MANY_STREAMS`.
pub const STREAMS_MAX: usize = 1_024;
pub const STREAMS_PER_TOKEN_MAX: usize = 16;
/// Events an event stream reads from the log per step: at most this many sit
/// decoded in memory per stream, besides HTTP/2's window.
pub const FEED_BATCH_EVENTS_MAX: u64 = 64;
/// Event streams reading the log at once (each read is one blocking task), so
/// that a thousand subscribers catching up hold a few threads, not a thousand.
pub const FEED_READS_MAX: usize = 4;
/// A new connection must send HTTP/2's preface (its first 24 bytes; with TLS,
/// the first 24 bytes of its handshake) within this, or it is closed.
pub const PREFACE_TIMEOUT_MS: u64 = 5_000;
/// A connection with no call in flight for this long is closed.
pub const CONNECTION_IDLE_TIMEOUT_MS: u64 = 300_000;
/// HTTP/2 pings on a connection quiet for this long; no answer within
/// `KEEPALIVE_TIMEOUT_MS` closes it (a peer gone without a FIN, a stream whose
/// client vanished).
pub const KEEPALIVE_INTERVAL_MS: u64 = 60_000;
pub const KEEPALIVE_TIMEOUT_MS: u64 = 20_000;

const _: () = assert!(EXPIRY_SWEEP_LOTS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(GROUP_COMMANDS_MAX <= QUEUE_COMMANDS_MAX);
const _: () = assert!(REPORT_PAGE_SIZE_MAX < REPORT_WALK_STEPS_MAX);
const _: () = assert!(USE_POINTS_MAX <= POINTS_BALANCE_MAX);
const _: () = assert!(BULK_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(IMPORT_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(LEVELS_ITEMS_MAX <= COMMAND_EVENTS_MAX);
const _: () = assert!(REPORT_PAGE_SIZE_DEFAULT <= REPORT_PAGE_SIZE_MAX);
const _: () = assert!(CREDIT_SCALE <= DECIMAL_SCALE_MAX);
const _: () = assert!(POINTS_PER_ADD_MAX <= i64::MAX as u64);
const _: () = assert!(STREAMS_PER_TOKEN_MAX <= STREAMS_MAX);
const _: () = assert!(FEED_READS_MAX >= 1);
const _: () = assert!(PREFACE_TIMEOUT_MS < CONNECTION_IDLE_TIMEOUT_MS);
const _: () = assert!(KEEPALIVE_TIMEOUT_MS < KEEPALIVE_INTERVAL_MS);
const _: () = assert!(POINTS_PER_ADD_MAX <= POINTS_BALANCE_MAX);
const _: () = assert!(REQUEST_BYTES_MAX < STORED_VALUE_BYTES_MAX / 8);
const _: () = assert!(REQUEST_BYTES_MAX <= JSON_REQUEST_BYTES_MAX);
const _: () = assert!(MEMBERS_PAGE_SIZE_DEFAULT <= MEMBERS_PAGE_SIZE_MAX);
const _: () = assert!(ACTIVITIES_PAGE_SIZE_DEFAULT <= ACTIVITIES_PAGE_SIZE_MAX);
const _: () = assert!(EXPIRING_PAGE_SIZE_DEFAULT <= EXPIRING_PAGE_SIZE_MAX);
const _: () = assert!(HOLD_EXPIRY_DEFAULT_MICROS <= HOLD_EXPIRY_MAX_MICROS);
const _: () = assert!(HOLDS_PAGE_SIZE_DEFAULT <= HOLDS_PAGE_SIZE_MAX);
const _: () = assert!(TIMESTAMP_SECONDS_MIN < 0 && 0 < TIMESTAMP_SECONDS_MAX);
// The whole Timestamp range fits the core's microseconds in an i64.
const _: () = assert!(TIMESTAMP_SECONDS_MAX < i64::MAX / 1_000_000 - 1);
const _: () = assert!(TIMESTAMP_SECONDS_MIN > i64::MIN / 1_000_000 + 1);

/// Bytes of a stored key a backup entry carries at most (`ledger_store::backup`):
/// the longest key is an activity row's, about 270 bytes.
pub const BACKUP_KEY_BYTES_MAX: usize = 1_024;
/// Bytes of backup file in one message of the `Backup` RPC's stream: well under
/// what a gRPC client takes by default (4 MiB).
pub const BACKUP_CHUNK_BYTES: usize = 1024 * 1024;
const _: () = assert!(BACKUP_KEY_BYTES_MAX > 3 + 2 * ID_BYTES_MAX + 8 + 4);
const _: () = assert!(BACKUP_CHUNK_BYTES <= 4 * 1024 * 1024 / 2);

// The event export to NATS JetStream (`ledgerd --export-nats`).

/// Publishes in flight, awaiting their acks in order: enough to keep the link to
/// NATS busy, and at most this many messages to look for again after a failure.
pub const EXPORT_ACKS_IN_FLIGHT_MAX: usize = 256;
/// Events the exporter reads and encodes from the log per step (whole records, so
/// one step may hold up to `COMMAND_EVENTS_MAX` more).
pub const EXPORT_BATCH_EVENTS_MAX: usize = 1_024;

const _: () = assert!(EXPORT_ACKS_IN_FLIGHT_MAX >= 1);
const _: () = assert!(EXPORT_ACKS_IN_FLIGHT_MAX <= EXPORT_BATCH_EVENTS_MAX);
/// Events `ledger import-nats --follow` appends between two syncs while the stream
/// keeps it busy (it also syncs whenever it has caught up): what a power loss of
/// the standby could take back, and fetch again at the next start.
pub const IMPORT_SYNC_EVENTS_MAX: u64 = 10_000;

const _: () = assert!(IMPORT_SYNC_EVENTS_MAX >= 1);

// `ledgerd`'s log writer (ledger-grpc's `log_writer`).

/// Bytes of log lines waiting for the log's writer thread at most; past it new
/// lines are dropped (and counted) rather than making calls wait for a stderr
/// nobody reads. About 130,000 request lines.
pub const LOG_BYTES_QUEUED_MAX: usize = 32 * 1024 * 1024;
/// Waiting bytes at which the writer thread is woken before its interval.
pub const LOG_FLUSH_BYTES: usize = 64 * 1024;
/// How late a log line reaches stderr at most (the writer thread's interval).
pub const LOG_FLUSH_INTERVAL_MS: u64 = 50;

const _: () = assert!(LOG_FLUSH_BYTES < LOG_BYTES_QUEUED_MAX);
