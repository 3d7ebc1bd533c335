//! The fleet's shared directory in Redis (PROTOCOL.md §9.7).
//!
//! Every change is one Lua script, so each runs atomically on the Redis
//! server: two instances that claim one room at the same moment cannot both
//! own it. Times are Redis's own clock (`TIME`), so the instances' clocks do
//! not matter. Rooms are leases: an instance renews its rooms every
//! [`FleetConfig::lease`] / 5, and a room whose lease ran out (its instance
//! died, or lost Redis for that long) is removed by the next script that
//! runs. No file data ever goes through Redis: only nameplates, instance
//! addresses and per-address counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use tokio::time::{timeout, Instant};
use tracing::{info, warn};

use crate::limits::IpKey;
use crate::wire::Room;
use crate::{RelayError, Role};

/// How long one Redis call may take before the directory counts as down.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Rooms renewed per script call.
const RENEW_BATCH: usize = 500;

/// How a relay joins a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `redis://HOST:PORT[/DB]` (or `rediss://` for TLS, `redis+unix://`).
    pub redis_url: String,
    /// The `host:port` at which clients reach this instance: where peers
    /// waiting here are redirected to.
    pub advertise: String,
    /// Prefix of every Redis key. The default, `{pqdrop}:`, is a hash tag,
    /// so all keys land in one slot of a Redis Cluster.
    pub prefix: String,
    /// How long a room outlives its instance: an instance that dies frees its
    /// rooms and nameplates within this time. Default 10 s.
    pub lease: Duration,
}

impl FleetConfig {
    /// A fleet member with the default prefix and lease.
    pub fn new(redis_url: impl Into<String>, advertise: impl Into<String>) -> FleetConfig {
        FleetConfig { redis_url: redis_url.into(), advertise: advertise.into(), prefix: "{pqdrop}:".into(), lease: Duration::from_secs(10) }
    }
}

/// Round trips to Redis, as the metrics report them.
#[derive(Debug, Default)]
pub(crate) struct FleetStats {
    pub(crate) up: AtomicBool,
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) rtt_micros_total: AtomicU64,
    pub(crate) redirects: AtomicU64,
}

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The room is this instance's now (for an allocation: this nameplate).
    Mine(Room),
    /// Someone waits there already.
    Occupied {
        /// The owner's instance id.
        instance: String,
        /// The owner's role.
        role: Role,
        /// The owner's advertised address ("" if the instance is gone).
        addr: String,
        /// The owner's whole directory value (for [`Fleet::release`]).
        value: String,
    },
    /// The address's join rate, counted across the fleet, is used up.
    RateLimited,
    /// The address has `max_pending_per_ip` rooms waiting across the fleet.
    PendingLimit,
    /// The fleet holds `max_pending_total` rooms.
    Full,
    /// No nameplate is free.
    Exhausted,
}

/// The directory cannot be used now (Redis down, slow or failing).
#[derive(Debug)]
pub(crate) struct Unavailable;

/// One instance's handle on the fleet's directory.
#[derive(Debug)]
pub(crate) struct Fleet {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    /// This instance's id in the directory: random, new at every start.
    pub(crate) instance: String,
    pub(crate) config: FleetConfig,
    keys: [String; 6],
    claim: Script,
    release: Script,
    renew: Script,
    leave: Script,
    pub(crate) stats: FleetStats,
    /// With `--web`: the page's URL, advertised after the address (§9.7).
    pub(crate) page_url: std::sync::OnceLock<String>,
}

/// Helpers every script starts with. KEYS: 1 rooms (hash room → value
/// "instance|role|address|id"; a room is a nameplate in decimal or `c` and a
/// contact room in hex), 2 leases (sorted set room → expiry in ms), 3 used
/// canonical nameplates (bitmap; contact rooms never touch it), 4 waiting rooms per address
/// (hash), 5 instance addresses (hash), 6 instance leases (sorted set).
const LUA_COMMON: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function canonical(np)
  if string.match(np, '^[1-9][0-9]?[0-9]?[0-9]?[0-9]?$') then
    local n = tonumber(np)
    if n <= 65535 then return n end
  end
  return nil
end
local function addr_of(v) return string.match(v, '^[^|]*|[^|]*|([^|]*)|') end
local function add(np, v, expiry)
  redis.call('HSET', KEYS[1], np, v)
  redis.call('ZADD', KEYS[2], expiry, np)
  local n = canonical(np)
  if n then redis.call('SETBIT', KEYS[3], n, 1) end
  local ip = addr_of(v)
  if ip then redis.call('HINCRBY', KEYS[4], ip, 1) end
end
local function drop(np, v)
  redis.call('HDEL', KEYS[1], np)
  redis.call('ZREM', KEYS[2], np)
  local n = canonical(np)
  if n then redis.call('SETBIT', KEYS[3], n, 0) end
  local ip = addr_of(v)
  if ip and redis.call('HINCRBY', KEYS[4], ip, -1) <= 0 then redis.call('HDEL', KEYS[4], ip) end
end
local function reap(now)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 128)
  for _, np in ipairs(dead) do
    local v = redis.call('HGET', KEYS[1], np)
    if v then drop(np, v) else redis.call('ZREM', KEYS[2], np) end
  end
end
"#;

/// KEYS 1..6 and 7 the address's join-rate bucket. ARGV: room ("" to
/// allocate), value, address, lease ms, max rooms per address, max rooms,
/// join rate per s, join burst, largest nameplate to allocate.
const LUA_CLAIM: &str = r#"
local now = now_ms()
reap(now)
local np, value, ip = ARGV[1], ARGV[2], ARGV[3]
local rate, burst = tonumber(ARGV[7]), tonumber(ARGV[8])
local b = redis.call('HMGET', KEYS[7], 't', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local keep = 86400000
if rate > 0 then keep = math.ceil(burst / rate * 1000) + 1000 end
if tokens < 1 then
  redis.call('HSET', KEYS[7], 't', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[7], keep)
  return {'rate'}
end
redis.call('HSET', KEYS[7], 't', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[7], keep)
if np ~= '' then
  local v = redis.call('HGET', KEYS[1], np)
  if v then
    local inst = string.match(v, '^([^|]*)|') or ''
    return {'occupied', v, redis.call('HGET', KEYS[5], inst) or ''}
  end
end
if tonumber(redis.call('HGET', KEYS[4], ip) or '0') >= tonumber(ARGV[5]) then return {'pending'} end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {'full'} end
if np == '' then
  redis.call('SETBIT', KEYS[3], 0, 1)
  local n = redis.call('BITPOS', KEYS[3], 0)
  if n < 0 or n > tonumber(ARGV[9]) then return {'exhausted'} end
  np = tostring(n)
  if redis.call('HEXISTS', KEYS[1], np) == 1 then return {'exhausted'} end
end
add(np, value, now + tonumber(ARGV[4]))
return {'mine', np}
"#;

/// ARGV: nameplate, value. Removes the room if it is still that value's.
const LUA_RELEASE: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == ARGV[2] then drop(ARGV[1], v); return 1 end
return 0
"#;

/// ARGV: instance, its address, lease ms, instance lease ms, then pairs of
/// nameplate and value. Renews the instance and its rooms; takes back rooms
/// that are free (after a Redis restart, or a lease that ran out while Redis
/// was away); returns the nameplates now held by someone else.
const LUA_RENEW: &str = r#"
local now = now_ms()
reap(now)
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[4]), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 128)
for _, i in ipairs(gone) do redis.call('HDEL', KEYS[5], i); redis.call('ZREM', KEYS[6], i) end
local expiry = now + tonumber(ARGV[3])
local lost = {}
for k = 5, #ARGV, 2 do
  local np, val = ARGV[k], ARGV[k + 1]
  local v = redis.call('HGET', KEYS[1], np)
  if v == val then redis.call('ZADD', KEYS[2], expiry, np)
  elseif not v then add(np, val, expiry)
  else lost[#lost + 1] = np end
end
return lost
"#;

/// ARGV: instance. Takes the instance out of the fleet (on shutdown).
const LUA_LEAVE: &str = r#"
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
"#;

impl Fleet {
    /// Checks the configuration; does not connect yet (see [`Fleet::reconnect`]).
    pub(crate) fn new(config: FleetConfig) -> Result<Fleet, RelayError> {
        let client =
            redis::Client::open(config.redis_url.as_str()).map_err(|_| RelayError::Config("--redis is not a valid redis:// URL"))?;
        if config.advertise.is_empty() || config.advertise.len() > 255 || !config.advertise.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RelayError::Config("--advertise must be host:port"));
        }
        if config.advertise.contains('|') || config.prefix.contains('|') {
            return Err(RelayError::Config("--advertise and the key prefix must not contain '|'"));
        }
        if config.lease < Duration::from_secs(1) {
            return Err(RelayError::Config("the fleet lease must be at least 1 s"));
        }
        let p = &config.prefix;
        let keys = ["rooms", "leases", "used", "pending", "instances", "instance-leases"].map(|k| format!("{p}{k}"));
        let script = |body: &str| Script::new(&format!("{LUA_COMMON}{body}"));
        Ok(Fleet {
            client,
            conn: Mutex::new(None),
            instance: new_instance_id(),
            keys,
            claim: script(LUA_CLAIM),
            release: script(LUA_RELEASE),
            renew: script(LUA_RENEW),
            leave: script(LUA_LEAVE),
            stats: FleetStats::default(),
            page_url: std::sync::OnceLock::new(),
            config,
        })
    }

    /// What this instance advertises: `host:port`, and with `--web` a space
    /// and the page's URL (neither contains a space), so that a browser peer
    /// is redirected to a page and a TCP peer to a TCP address.
    fn advertised(&self) -> String {
        match self.page_url.get() {
            Some(url) => format!("{} {url}", self.config.advertise),
            None => self.config.advertise.clone(),
        }
    }

    fn conn(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the directory is connected.
    pub(crate) fn is_up(&self) -> bool {
        self.stats.up.load(Ordering::Relaxed)
    }

    fn set_down(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if self.stats.up.swap(false, Ordering::Relaxed) {
            warn!("relay directory (Redis) unreachable; refusing new rooms until it is back");
        }
    }

    /// Connects to Redis (one attempt, bounded by [`CALL_TIMEOUT`]).
    pub(crate) async fn reconnect(&self) -> bool {
        let cfg = AsyncConnectionConfig::new().set_connection_timeout(Some(CALL_TIMEOUT)).set_response_timeout(Some(CALL_TIMEOUT));
        match timeout(CALL_TIMEOUT * 2, self.client.get_multiplexed_async_connection_with_config(&cfg)).await {
            Ok(Ok(c)) => {
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                if !self.stats.up.swap(true, Ordering::Relaxed) {
                    info!(instance = %self.instance, "relay directory (Redis) connected");
                }
                true
            }
            _ => false,
        }
    }

    /// Runs one script invocation with a deadline, counting it.
    async fn call<T: redis::FromRedisValue>(&self, inv: &redis::ScriptInvocation<'_>) -> Result<T, Unavailable> {
        let Some(mut c) = self.conn() else { return Err(Unavailable) };
        let t0 = Instant::now();
        let r = timeout(CALL_TIMEOUT, inv.invoke_async::<T>(&mut c)).await;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(Ok(v)) => {
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.stats.rtt_micros_total.fetch_add(us, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal() || e.is_unrecoverable_error()
                {
                    self.set_down();
                } else {
                    warn!(error = %e, "relay directory script failed");
                }
                Err(Unavailable)
            }
            Err(_) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.set_down();
                Err(Unavailable)
            }
        }
    }

    /// The directory value of a room waited in by peer `id` of this instance.
    pub(crate) fn value(&self, role: Role, addr: IpKey, id: u64) -> String {
        let r = match role {
            Role::Sender => "s",
            Role::Receiver => "r",
        };
        format!("{}|{r}|{addr}|{id}", self.instance)
    }

    /// Claims `room` (or, with `None`, allocates the smallest free
    /// nameplate) for `value`, under the fleet-wide limits. A contact room is
    /// named `c` and 32 hex digits, which the scripts never count as a
    /// nameplate.
    pub(crate) async fn claim(&self, room: Option<Room>, value: &str, addr: IpKey, cfg: &crate::RelayConfig) -> Result<Claim, Unavailable> {
        let mut inv = self.claim.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.key(format!("{}rate:{addr}", self.config.prefix));
        inv.arg(room.map(|r| r.key()).unwrap_or_default())
            .arg(value)
            .arg(addr.to_string())
            .arg(millis(self.config.lease))
            .arg(cfg.max_pending_per_ip)
            .arg(cfg.max_pending_total)
            .arg(cfg.join_rate_per_sec)
            .arg(cfg.join_burst)
            .arg(super::MAX_ALLOCATED);
        let r: Vec<String> = self.call(&inv).await?;
        Ok(match r.first().map(String::as_str) {
            Some("mine") => Claim::Mine(r.get(1).and_then(|n| Room::from_key(n)).ok_or(Unavailable)?),
            Some("occupied") => {
                let value = r.get(1).cloned().unwrap_or_default();
                let mut parts = value.split('|');
                let instance = parts.next().unwrap_or_default().to_owned();
                let role = if parts.next() == Some("s") { Role::Sender } else { Role::Receiver };
                Claim::Occupied { instance, role, addr: r.get(2).cloned().unwrap_or_default(), value }
            }
            Some("rate") => Claim::RateLimited,
            Some("pending") => Claim::PendingLimit,
            Some("full") => Claim::Full,
            Some("exhausted") => Claim::Exhausted,
            _ => return Err(Unavailable),
        })
    }

    /// Frees `room` if it is still `value`'s.
    pub(crate) async fn release(&self, room: Room, value: &str) -> Result<bool, Unavailable> {
        let mut inv = self.release.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.arg(room.key()).arg(value);
        let n: i64 = self.call(&inv).await?;
        Ok(n == 1)
    }

    /// Renews this instance and its `rooms` (room, value); returns the
    /// rooms that someone else holds now.
    pub(crate) async fn renew(&self, rooms: &[(Room, String)]) -> Result<Vec<Room>, Unavailable> {
        let mut lost = Vec::new();
        let mut batches: Vec<&[(Room, String)]> = rooms.chunks(RENEW_BATCH).collect();
        if batches.is_empty() {
            batches.push(&[]);
        }
        for batch in batches {
            let mut inv = self.renew.prepare_invoke();
            for k in &self.keys {
                inv.key(k);
            }
            inv.arg(&self.instance).arg(self.advertised()).arg(millis(self.config.lease)).arg(millis(self.config.lease));
            for (np, v) in batch {
                inv.arg(np.key()).arg(v);
            }
            let l: Vec<String> = self.call(&inv).await?;
            lost.extend(l.iter().filter_map(|n| Room::from_key(n)));
        }
        Ok(lost)
    }

    /// Takes this instance out of the fleet's list (its rooms are released
    /// one by one as their peers are told the relay is shutting down).
    pub(crate) async fn leave(&self) {
        let mut inv = self.leave.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.arg(&self.instance);
        let _ = self.call::<i64>(&inv).await;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// 64 random bits from the standard library's per-process hash keys (seeded
/// by the OS), mixed with the time and process id: an id, not a secret.
fn new_instance_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let h = std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
    format!("{h:016x}")
}
