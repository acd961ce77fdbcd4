//! Lua scripts: each runs atomically in one round trip, so a batch is never
//! half applied and an entry id is recorded in the same step that creates it.

use redis::Script;

/// Add jobs to their streams and record where each one is.
/// KEYS[1] = queue set, then (stream, jobs) per queue.
/// ARGV[1] = n queues, ARGV[2..n+1] = their names, then (queue index, id, payload).
const ENQUEUE: &str = r#"
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('SADD', KEYS[1], ARGV[1 + i]) end
local added = 0
for i = n + 2, #ARGV, 3 do
  local k = tonumber(ARGV[i])
  local entry = redis.call('XADD', KEYS[2 * k], '*', 'id', ARGV[i + 1], 'payload', ARGV[i + 2])
  redis.call('HSET', KEYS[2 * k + 1], ARGV[i + 1], entry)
  added = added + 1
end
return added
"#;

/// Put jobs in their delayed sets, due at server time + delay.
/// KEYS[1] = queue set, then (delayed, jobs) per queue.
/// ARGV[1] = n queues, ARGV[2..n+1] = names, then (queue index, id, member, delay ms).
const SCHEDULE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('SADD', KEYS[1], ARGV[1 + i]) end
local added = 0
for i = n + 2, #ARGV, 4 do
  local k = tonumber(ARGV[i])
  redis.call('ZADD', KEYS[2 * k], now + tonumber(ARGV[i + 3]), ARGV[i + 2])
  redis.call('HSET', KEYS[2 * k + 1], ARGV[i + 1], 'delayed')
  added = added + 1
end
return added
"#;

/// Move due delayed jobs (at most ARGV[1] per queue) to their streams.
/// KEYS = (delayed, stream, jobs) per queue.
/// Returns ms until the next delayed job is due, or -1 when none is waiting.
const PROMOTE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local next_wait = -1
for i = 1, #KEYS, 3 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(due) do
    local ok, job = pcall(cjson.decode, member)
    if ok and type(job) == 'table' and type(job.id) == 'string' and type(job.payload) == 'string' then
      local entry = redis.call('XADD', KEYS[i + 1], '*', 'id', job.id, 'payload', job.payload)
      redis.call('HSET', KEYS[i + 2], job.id, entry)
    end
    redis.call('ZREM', KEYS[i], member)
  end
  local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if first[2] then
    local wait = math.max(0, tonumber(first[2]) - now)
    if next_wait < 0 or wait < next_wait then next_wait = wait end
  end
end
return next_wait
"#;

/// Acknowledge and delete entries; forget a job id only while it still
/// points at the entry being acknowledged, so a newer delivery stays known.
/// An emptied stream is kept with its group: deleting it would race with a
/// concurrent XADD and with readers blocked on the key (Redis 7.0 does not
/// unblock them), stalling deliveries.
/// KEYS = (stream, jobs) per queue. ARGV[1] = group, then (queue index, id, entry).
const ACK: &str = r#"
local acked = 0
for i = 2, #ARGV, 3 do
  local k = tonumber(ARGV[i])
  local stream, jobs = KEYS[2 * k - 1], KEYS[2 * k]
  local id, entry = ARGV[i + 1], ARGV[i + 2]
  local r = redis.pcall('XACK', stream, ARGV[1], entry)
  if type(r) == 'number' then acked = acked + r end
  redis.call('XDEL', stream, entry)
  if redis.call('HGET', jobs, id) == entry then
    redis.call('HDEL', jobs, id)
  end
end
return acked
"#;

/// Counts of one queue; a missing stream or group counts as zero.
/// KEYS = stream, delayed, dead. ARGV[1] = group.
/// Returns {stream length, pending, delayed, dead}.
const STATS: &str = r#"
local len = redis.call('XLEN', KEYS[1])
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and p.err == nil and p[1] then pending = tonumber(p[1]) end
return {len, pending, redis.call('ZCARD', KEYS[2]), redis.call('HLEN', KEYS[3])}
"#;

/// The compiled scripts (each keeps its SHA1 for EVALSHA).
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) schedule: Script,
    pub(crate) promote: Script,
    pub(crate) ack: Script,
    pub(crate) stats: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            enqueue: Script::new(ENQUEUE),
            schedule: Script::new(SCHEDULE),
            promote: Script::new(PROMOTE),
            ack: Script::new(ACK),
            stats: Script::new(STATS),
        }
    }
}
