"""State the nodes of a cluster share through Redis: rate limits and login lockouts
(`RedisRateLimiter`), presence over every node (`RedisPresence`) and the sliding windows of the
alert rules (`RedisAlertWindows`).

Each operation is one Lua script, so it is atomic however many nodes ask at once (two nodes
never both take the last token, nor both publish one presence change). The scripts name keys
under the cluster's prefix, so they need one Redis (or a Sentinel-managed primary), not Redis
Cluster. Times come from the caller, as with the in-memory implementations, so a fake clock
drives both alike; Redis' own expiry only collects keys nobody needs any more.

When Redis does not answer these raise `StoreUnavailable` (`RedisUnavailable`), and the
services' fallbacks (`services.limits.FallbackRateLimiter`, `services.presence.FallbackPresence`,
`services.alerts`) use this process's memory meanwhile.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from enclave.bus.redis.link import RedisLink, Script
from enclave.domain.ids import OrgId, UserId
from enclave.domain.shared import Failures, Swept
from enclave.domain.signals import PresenceChanged, PresenceStatus

__all__ = ["RedisAlertWindows", "RedisPresence", "RedisRateLimiter"]

_TAKE = Script("""
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(v[1]), tonumber(v[2])
if tokens == nil then tokens, at = burst, now end
local elapsed = math.max(0, now - at)
tokens = math.min(burst, tokens + elapsed * rate / 1000.0)
local wait = 0
if tokens < 1.0 then
  wait = math.max(1, math.ceil((1.0 - tokens) / rate * 1000.0 - 1e-6))
else
  tokens = tokens - 1.0
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000.0) + 1000)
return wait
""")

_FAILURES = Script("""
local window, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'c', 'l')
local count, last = tonumber(v[1]) or 0, tonumber(v[2]) or 0
if count > 0 and now - last > window then count, last = 0, 0 end
if ARGV[3] == '1' then
  count, last = count + 1, now
  redis.call('HSET', KEYS[1], 'c', count, 'l', last)
  redis.call('PEXPIRE', KEYS[1], window + 60000)
end
return {count, last}
""")

_MARK = Script("""
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
""")

_MARKED = Script("""
local until_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > tonumber(ARGV[1]) then return 1 end
return 0
""")

_ACQUIRE = Script("""
local limit, ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl + 60000)
return 1
""")

_RELEASE = Script("""
redis.call('ZPOPMIN', KEYS[1])
""")

_CLEAR = Script("""
redis.call('DEL', KEYS[1])
""")

_MARK_MIN_TTL_MS = 86_400_000


class RedisRateLimiter:
    """`services.limits.RateLimiter` over Redis: one bucket, counter or slot set per key."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def _key(self, key: str) -> str:
        return self._link.key("rl:" + key)

    async def take(self, key: str, *, per_second: float, burst: int, now_ms: int) -> int:
        return int(await self._link.call(_TAKE, [self._key(key)], [per_second, burst, now_ms]))

    async def failures(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        count, last = await self._link.call(_FAILURES, [self._key(key)], [window_ms, now_ms, 0])
        return Failures(int(count), int(last))

    async def add_failure(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        count, last = await self._link.call(_FAILURES, [self._key(key)], [window_ms, now_ms, 1])
        return Failures(int(count), int(last))

    async def clear(self, key: str) -> None:
        await self._link.call(_CLEAR, [self._key(key)], [])

    async def mark(self, key: str, *, until_ms: int) -> None:
        # The mark holds its own end; Redis keeps it at least a day longer than it could be
        # needed by a clock that runs behind Redis' (the caller's clock decides, not Redis').
        await self._link.call(_MARK, [self._key(key)], [until_ms, _MARK_MIN_TTL_MS * 400])

    async def marked(self, key: str, *, now_ms: int) -> bool:
        return bool(await self._link.call(_MARKED, [self._key(key)], [now_ms]))

    async def acquire(self, key: str, *, limit: int, ttl_ms: int, now_ms: int) -> bool:
        slot = secrets.token_hex(8)
        args = [limit, ttl_ms, now_ms, slot]
        return bool(await self._link.call(_ACQUIRE, [self._key(key)], args))

    async def release(self, key: str) -> None:
        await self._link.call(_RELEASE, [self._key(key)], [])


# -- presence -----------------------------------------------------------------------------------

# A person's hash: `n:<node>` -> that node's status of them, `org`, and `agg`: the status over
# all nodes last reported (so that exactly one caller sees each change).
_AGGREGATE = """
local function aggregate(h)
  local all = redis.call('HGETALL', h)
  local status = 'offline'
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'n:' then
      if all[i + 1] == 'online' then status = 'online'
      elseif status == 'offline' then status = 'away' end
    end
  end
  local last = redis.call('HGET', h, 'agg') or 'offline'
  if status == 'offline' then redis.call('DEL', h) else redis.call('HSET', h, 'agg', status) end
  if status == last then return false end
  return status
end
"""

_UPDATE = Script(
    _AGGREGATE
    + """
local h, field = KEYS[1], 'n:' .. ARGV[1]
if ARGV[2] == 'offline' then
  redis.call('HDEL', h, field)
  redis.call('SREM', KEYS[2], ARGV[4])
else
  redis.call('HSET', h, field, ARGV[2], 'org', ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[1])
end
return aggregate(h)
"""
)

# Keep this node alive; take the entries of nodes whose liveness key expired out of the count.
_SWEEP = Script(
    _AGGREGATE
    + """
local prefix, me = ARGV[1], ARGV[2]
local existed = redis.call('SET', KEYS[2], '1', 'PX', ARGV[3], 'GET')
local out = {existed and 1 or 0}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n ~= me and redis.call('EXISTS', prefix .. 'node:' .. n) == 0 then
    local users = prefix .. 'node-users:' .. n
    for _, uid in ipairs(redis.call('SMEMBERS', users)) do
      local h = prefix .. 'presence:' .. uid
      local org = redis.call('HGET', h, 'org')
      redis.call('HDEL', h, 'n:' .. n)
      local changed = aggregate(h)
      if changed and org then
        table.insert(out, uid); table.insert(out, org); table.insert(out, changed)
      end
    end
    redis.call('DEL', users)
    redis.call('SREM', KEYS[1], n)
  end
end
return out
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisPresence:
    """`services.presence.PresenceStore` over Redis. A node counts as alive while its key
    `node:<id>` exists; `sweep` renews it (every `sweep_seconds`, with a lifetime of
    `node_ttl_seconds`), and the first sweep after it expired takes that node's devices out."""

    def __init__(self, link: RedisLink, node_id: str, *, node_ttl_seconds: float = 15.0) -> None:
        self._link = link
        self._node = node_id
        self._ttl_ms = int(node_ttl_seconds * 1000)
        self._swept_once = False

    async def update(
        self, org_id: OrgId, user_id: UserId, status: PresenceStatus
    ) -> PresenceStatus | None:
        keys = [
            self._link.key(f"presence:{user_id}"),
            self._link.key(f"node-users:{self._node}"),
            self._link.key("nodes"),
        ]
        changed = await self._link.call(_UPDATE, keys, [self._node, status.value, org_id, user_id])
        return None if changed is None else PresenceStatus(_text(changed))

    async def statuses(self, user_ids: Sequence[UserId]) -> dict[UserId, PresenceStatus]:
        if not user_ids:
            return {}

        def fill(pipe: Any) -> None:
            for uid in user_ids:
                pipe.hget(self._link.key(f"presence:{uid}"), "agg")

        found = await self._link.pipeline(fill)
        return {
            uid: PresenceStatus(_text(v)) if v else PresenceStatus.OFFLINE
            for uid, v in zip(user_ids, found, strict=True)
        }

    async def sweep(self) -> Swept:
        keys = [self._link.key("nodes"), self._link.key(f"node:{self._node}")]
        out = await self._link.call(_SWEEP, keys, [self._link.prefix, self._node, self._ttl_ms])
        existed = bool(int(out[0]))
        changes = [
            PresenceChanged(OrgId(_text(org)), UserId(_text(uid)), PresenceStatus(_text(status)))
            for uid, org, status in zip(out[1::3], out[2::3], out[3::3], strict=True)
        ]
        lost_mine = self._swept_once and not existed
        self._swept_once = True
        return Swept(changes, lost_mine)


_WINDOW = Script("""
local now, window, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local extra = redis.call('ZCARD', KEYS[1]) - keep
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1) end
redis.call('PEXPIRE', KEYS[1], window + 60000)
local count = redis.call('ZCARD', KEYS[1])
local first = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if count < keep then return {count, first, 0} end
local fired = tonumber(redis.call('GET', KEYS[2]) or '-1')
if fired >= 0 and fired > now - window then return {count, first, 0} end
redis.call('SET', KEYS[2], now, 'PX', window + 60000)
return {count, first, 1}
""")


class RedisAlertWindows:
    """The sliding windows of `services.alerts` over Redis, so that a burst spread over the
    nodes raises its alert once for the cluster. Called on database worker threads."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def count(self, slot: str, at: int, window_ms: int, threshold: int) -> tuple[int, int, bool]:
        """Count an entry at `at` for `slot`: (entries in the window, up to `threshold`; the
        time of the oldest; whether the alert fires now, at most once per window)."""
        keys = [self._link.key(f"alert:{slot}"), self._link.key(f"alert-fired:{slot}")]
        member = f"{at}:{secrets.token_hex(4)}"
        count, first, fire = self._link.call_sync(_WINDOW, keys, [at, window_ms, threshold, member])
        return int(count), int(first), bool(int(fire))
