"""Redis idempotency store, shared by every Function Compute instance.

Set ``AXN_IDEMPOTENCY_URL`` to ``redis://[[user]:password@]host[:port][/db]`` or, for TLS,
``rediss://…``. The module is imported (and with it redis-py) only when such a URL is set.

**ApsaraDB for Redis / Tair.** Give the function VPC access (``vpcConfig`` in ``s.yaml``) in the
instance's VPC, add the function's vSwitch CIDR block to the instance's whitelist, and use the
instance's *VPC endpoint*, e.g.
``AXN_IDEMPOTENCY_URL=redis://:PASSWORD@r-bp1xxxxxxxxxxxxx.redis.rds.aliyuncs.com:6379/0``.
With the default account (named after the instance id) the password alone goes after the colon;
with an account you created, ApsaraDB expects the password ``account:password``, written in the
URL with the colon escaped: ``redis://:myaccount%3APASSWORD@host:6379/0`` (percent-escape any
``@ : / ? #`` in the password too). With TLS enabled on the instance, use ``rediss://`` and point
the client at the CA chain downloaded from the console's TLS page, packaged with the code:
``rediss://:PASSWORD@host:6379/0?ssl_ca_certs=/code/ApsaraDB-CA-Chain.pem``. Standard,
read/write-splitting and cluster instances in proxy mode all work (each script touches one key);
cluster direct-connection mode does not. Needs Redis 5.0 or later (4.0 not tested). Other URL
options redis-py understands (``socket_timeout=2``, ``socket_connect_timeout=2``) may be appended
as query parameters; the defaults are 1 s each. Every record lives under ``axn:idem:<sha256>``
as a hash (``state``, ``fingerprint``, ``token``, ``lease_until_ms``, ``response``, ``status``,
``upstream_request_id``, ``created_at_ms``, ``event`` and ``announced`` for an outcome's
announcement; ``prev:*`` holds the record a take-over replaced), so an operator can inspect one
with ``HGETALL`` and forget one with ``DEL``. The outbox, the record keys whose announcement may
still be owed, is one sorted set, ``axn:outbox``, scored by the time each key was added.

Every state transition is one Lua script run with EVALSHA, so no two instances can interleave a
read and a write. Leases are judged by the Redis server's clock (``TIME``), so instances with
skewed clocks agree. A reply lost in transit is retried by redis-py on a fresh connection (two
retries, a few ms apart: this also revives a connection left stale while FC froze the instance);
the scripts are written so that a repeated run with the same token answers as the first did.
Any Redis failure (refused, timeout, authentication, out of memory) raises
``StoreUnavailableError`` naming the host, never the password: the service fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import ConfigurationError
from .base import (
    ENV_VAR,
    Begin,
    IdempotencyStore,
    Outcome,
    Record,
    State,
    StoreUnavailableError,
    check_text,
)

T = TypeVar("T")

# Shared by the scripts: split a HGETALL reply into the record and the replaced record (prev:*).
_SPLIT = """
local function split(flat)
  local rec, prev = {}, {}
  for i = 1, #flat, 2 do
    local name, value = flat[i], flat[i + 1]
    if string.sub(name, 1, 5) == 'prev:' then
      prev[#prev + 1] = string.sub(name, 6)
      prev[#prev + 1] = value
    else
      rec[name] = value
    end
  end
  return rec, prev
end
"""

# KEYS[1]: record. ARGV: fingerprint, token, lease_ms, ttl_ms, take_over ('1' | '0').
# Returns {outcome, flat record}: the existing record, or the replaced one on a take-over.
BEGIN_LUA = (
    """
if redis.replicate_commands then redis.replicate_commands() end -- TIME before writes (Redis 4)
local key, fp, token = KEYS[1], ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
    + _SPLIT
    + """
local flat = redis.call('HGETALL', key)
local rec, prev = split(flat)
local function own(outcome, replaced)
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'IN_PROGRESS', 'fingerprint', fp, 'token', token,
    'lease_until_ms', string.format('%d', now + tonumber(ARGV[3])),
    'created_at_ms', string.format('%d', now))
  for i = 1, #replaced, 2 do
    if string.sub(replaced[i], 1, 5) ~= 'prev:' then
      redis.call('HSET', key, 'prev:' .. replaced[i], replaced[i + 1])
    end
  end
  redis.call('PEXPIRE', key, ARGV[4])
  return {outcome, replaced}
end
if #flat == 0 then return own('started', {}) end
if rec.fingerprint ~= fp then return {'key_reused', flat} end
if rec.state == 'IN_PROGRESS' and rec.token == token then
  -- this very begin, run again after its reply was lost: the key is still ours
  if #prev > 0 then return {'taken_over', prev} end
  return {'started', {}}
end
if rec.state == 'COMPLETED' then return {'completed', flat} end
if rec.state == 'IN_PROGRESS' then
  if (tonumber(rec.lease_until_ms) or 0) > now then return {'in_progress', flat} end
  if ARGV[5] == '1' then return own('taken_over', flat) end
  return {'lease_expired', flat}
end
if rec.state == 'UNKNOWN' then
  if ARGV[5] == '1' then return own('taken_over', flat) end
  return {'unknown', flat}
end
return {'malformed', flat}
"""
)

# KEYS[1]: record. ARGV: token, new state, response, status, ttl_ms, upstream id ('' = none),
# event ('' = none).
FINISH_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'token')
if cur[2] ~= ARGV[1] then return 0 end
if cur[1] == ARGV[2] then return 1 end -- the same call run again after its reply was lost
if cur[1] ~= 'IN_PROGRESS' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'response', ARGV[3], 'status', ARGV[4])
redis.call('HDEL', KEYS[1], 'upstream_request_id', 'event', 'announced')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'upstream_request_id', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'event', ARGV[7]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1]: record. ARGV: target names. Merges them into the newline-joined 'announced' field.
ANNOUNCE_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'event', 'announced')
if cur[1] ~= 'COMPLETED' or not cur[2] then return 0 end
local seen, names = {}, {}
for name in string.gmatch(cur[3] or '', '[^\\n]+') do seen[name] = true end
for i = 1, #ARGV do seen[ARGV[i]] = true end
for name in pairs(seen) do names[#names + 1] = name end
table.sort(names)
redis.call('HSET', KEYS[1], 'announced', table.concat(names, '\\n'))
return 1
"""

# The outbox: one sorted set of record keys, scored by when each was added (server time, ms).
OUTBOX_KEY = "axn:outbox"
# KEYS[1]: the outbox. ARGV: record key. NX: adding again keeps the first time.
OUTBOX_ADD_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
"""
# KEYS[1]: the outbox. ARGV: record key. XX: only a key still on the list moves to the back.
OUTBOX_DEFER_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
"""
# KEYS[1]: the outbox. ARGV: older_than_ms.
OUTBOX_COUNT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '-inf', now - tonumber(ARGV[1]))
"""
# KEYS[1]: the outbox. ARGV: older_than_ms, limit.
OUTBOX_DUE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, ARGV[2])
"""

# KEYS[1]: record. ARGV: token. Deletes our IN_PROGRESS record, or restores the one we replaced.
RELEASE_LUA = (
    _SPLIT
    + """
local rec, prev = split(redis.call('HGETALL', KEYS[1]))
if rec.state ~= 'IN_PROGRESS' or rec.token ~= ARGV[1] then return 0 end
if #prev == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(prev))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
)


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisStore(IdempotencyStore):
    """Idempotency records in Redis; safe across processes and instances."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        socket_timeout: float = 1.0,
        retries: int = 2,
    ) -> None:
        # A finishing write may wait out the socket timeout on each try (retries included):
        # the time budget keeps that much back after every Dyplsapi call.
        self.write_seconds = socket_timeout * (retries + 1) + 0.05 * retries
        parts = urlsplit(url)
        host = parts.hostname or "?"
        self.where = f"{host}:{parts.port or 6379}"
        self._secrets = tuple(
            {s for s in (parts.password, unquote(parts.password or "")) if s and len(s) > 1}
        )
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout,
                socket_timeout=socket_timeout,
                health_check_interval=30,
                decode_responses=True,
                # Lone surrogates (possible in JSON text) survive the round trip unchanged.
                encoding_errors="surrogatepass",
                retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), retries),
            )
        except ValueError as exc:  # a bad URL option; redis-py names the option, not its value
            raise ConfigurationError(f"{ENV_VAR}: {self._scrub(str(exc))}") from None
        self._begin_script = self._client.register_script(BEGIN_LUA)
        self._finish_script = self._client.register_script(FINISH_LUA)
        self._release_script = self._client.register_script(RELEASE_LUA)
        self._announce_script = self._client.register_script(ANNOUNCE_LUA)
        self._outbox_add_script = self._client.register_script(OUTBOX_ADD_LUA)
        self._outbox_due_script = self._client.register_script(OUTBOX_DUE_LUA)
        self._outbox_defer_script = self._client.register_script(OUTBOX_DEFER_LUA)
        self._outbox_count_script = self._client.register_script(OUTBOX_COUNT_LUA)

    # -- failure handling -------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _run(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except UnicodeError:  # bytes written by something else that are not our text
            raise self._malformed() from None
        except redis.RedisError as exc:
            detail = self._scrub(str(exc)) or "no detail"
            raise StoreUnavailableError(
                f"The idempotency store at {self.where} ({ENV_VAR}) is unavailable: "
                f"{operation} failed with {type(exc).__name__}: {detail}"
            ) from None

    def _malformed(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"The idempotency store at {self.where} ({ENV_VAR}) holds a malformed record; "
            "inspect it with HGETALL and remove it with DEL (or clear())."
        )

    def _record(self, fields: dict[str, str]) -> Record | None:
        if not fields:
            return None
        try:
            return Record(
                state=State(fields["state"]),
                fingerprint=fields["fingerprint"],
                token=fields.get("token", ""),
                lease_until=int(fields.get("lease_until_ms") or 0) / 1000,
                response=fields.get("response"),
                status=int(fields["status"]) if fields.get("status") else None,
                upstream_request_id=fields.get("upstream_request_id") or None,
                created_at=int(fields.get("created_at_ms") or 0) / 1000,
                event=fields.get("event") or None,
                announced=tuple(n for n in (fields.get("announced") or "").split("\n") if n),
            )
        except (KeyError, ValueError):
            raise self._malformed() from None

    # -- transitions: IdempotencyStore checks the arguments, then calls these ---------------

    def _begin(
        self, key: str, fingerprint: str, token: str, lease: float, ttl: int, take_over: bool
    ) -> Begin:
        args = [fingerprint, token, max(1, round(lease * 1000)), ttl * 1000, int(take_over)]
        raw: Any = self._run("begin", lambda: self._begin_script(keys=[key], args=args))
        outcome_text, flat = raw
        if outcome_text == "malformed":
            raise self._malformed()
        outcome = Outcome(outcome_text)
        record = self._record(_pairs(flat))
        if outcome.started:
            return Begin(True, token, record, outcome)
        return Begin(False, None, record, outcome)

    def _finish(
        self,
        state: State,
        key: str,
        token: str,
        response: str,
        status: int,
        ttl_seconds: int,
        upstream_request_id: str | None,
        event: str | None,
    ) -> bool:
        operation = "complete" if state is State.COMPLETED else "mark_unknown"
        args = [token, state.value, response, status, ttl_seconds * 1000]
        args += [upstream_request_id or "", event or ""]
        done = self._run(operation, lambda: self._finish_script(keys=[key], args=args))
        return bool(done)

    def _announce(self, key: str, targets: list[str]) -> bool:
        done = self._run("announce", lambda: self._announce_script(keys=[key], args=targets))
        return bool(done)

    def _outbox_add(self, key: str) -> None:
        self._run("outbox add", lambda: self._outbox_add_script(keys=[OUTBOX_KEY], args=[key]))

    def _outbox_remove(self, key: str) -> None:
        self._run("outbox remove", lambda: self._client.zrem(OUTBOX_KEY, key))

    def _outbox_defer(self, key: str) -> None:
        self._run("outbox defer", lambda: self._outbox_defer_script(keys=[OUTBOX_KEY], args=[key]))

    def _outbox_count(self, older_than: float) -> int:
        args = [round(older_than * 1000)]
        found: Any = self._run(
            "outbox count", lambda: self._outbox_count_script(keys=[OUTBOX_KEY], args=args)
        )
        return int(found)

    def _outbox_due(self, older_than: float, limit: int) -> list[str]:
        args = [round(older_than * 1000), limit]
        due: Any = self._run(
            "outbox due", lambda: self._outbox_due_script(keys=[OUTBOX_KEY], args=args)
        )
        return list(due)

    # -- the rest of the API ----------------------------------------------------------------

    def release(self, key: str, token: str) -> bool:
        check_text("key", key)
        check_text("token", token)
        return bool(self._run("release", lambda: self._release_script(keys=[key], args=[token])))

    def get(self, key: str) -> Record | None:
        check_text("key", key)
        fields: Any = self._run("get", lambda: self._client.hgetall(key))
        return self._record(fields)

    def clear(self, key: str) -> bool:
        check_text("key", key)
        removed: Any = self._run("clear", lambda: self._client.delete(key))
        return bool(removed)

    def ping(self) -> None:
        """Check the store answers (e.g. at instance start); raises StoreUnavailableError."""
        self._run("ping", self._client.ping)

    def durability_problems(self) -> list[str]:
        """What in the server's configuration can lose idempotency records; empty when nothing.

        A record that disappears before its TTL lets a redelivery of its order bind again, so two
        settings are checked:

        * **Eviction.** ``maxmemory-policy`` (``INFO memory``) must be ``noeviction``. Every
          record has a TTL, so the ``volatile-*`` policies (ApsaraDB's default is
          ``volatile-lru``) evict exactly these keys, and the ``allkeys-*`` policies evict any
          key. With ``noeviction`` a full Redis refuses writes instead, and the service fails
          closed. Any other policy is reported even while ``maxmemory`` is 0 (no limit): a limit
          set later starts the evictions without another check.
        * **Persistence.** AOF on (``aof_enabled`` in ``INFO persistence``), or RDB save points
          (``CONFIG GET save`` not empty). RDB alone is accepted although a crash loses the
          writes since the last snapshot (minutes, by the save points): records made in that
          time are forgotten. ``CONFIG GET save`` is asked only while AOF is off; where CONFIG
          is refused (renamed or forbidden by ApsaraDB / Tair or an ACL) and AOF is off,
          persistence cannot be confirmed, and that is reported.

        Each problem is one sentence naming the setting and the value to set. The URL and the
        password are never part of it. Raises StoreUnavailableError when the server cannot be
        asked.
        """
        memory: Any = self._run("INFO memory", lambda: self._client.info("memory"))
        persistence: Any = self._run("INFO persistence", lambda: self._client.info("persistence"))
        problems: list[str] = []

        policy = memory.get("maxmemory_policy")
        if policy is None:
            problems.append(
                "maxmemory-policy could not be read (INFO memory has no maxmemory_policy): if "
                "Redis evicts idempotency records before they expire, an evicted order is bound "
                "again; confirm that maxmemory-policy is noeviction (ApsaraDB console: Parameter "
                "settings)."
            )
        elif str(policy) != "noeviction":
            problems.append(
                f"maxmemory-policy is {policy}: Redis may evict idempotency records before they "
                "expire, and an evicted order is bound again; set maxmemory-policy to noeviction "
                "(ApsaraDB console: Parameter settings)."
            )

        aof = persistence.get("aof_enabled")
        if str(aof) == "1":
            return problems

        def save_points() -> str | None:
            try:
                reply: Any = self._client.config_get("save")
            except redis.ResponseError:  # CONFIG renamed, disabled or forbidden to this user
                return None
            value = reply.get("save") if isinstance(reply, dict) else None
            return None if value is None else str(value).strip()

        save = self._run("CONFIG GET save", save_points)
        aof_state = "appendonly is no" if aof is not None else "aof_enabled is not in INFO"
        if save is None:
            problems.append(
                f"Persistence could not be confirmed: {aof_state} and CONFIG GET save was "
                "refused, so a restart may forget every idempotency record, and every order "
                "redelivered after it is bound again; set appendonly to yes (ApsaraDB console: "
                "Parameter settings)."
            )
        elif not save:
            problems.append(
                f"Redis keeps idempotency records in memory only ({aof_state} and save is "
                "empty): a restart forgets every record, and every order redelivered after it is "
                "bound again; set appendonly to yes (ApsaraDB console: Parameter settings), or "
                "configure RDB save points with save."
            )
        return problems

    def close(self) -> None:
        self._client.close()
