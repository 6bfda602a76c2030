"""The shared store: one Redis that API hosts and loop hosts of a recipe all reach.

Same contract as the embedded store (``base.Store``; the contract tests run on
both). Every change that must be atomic is one Lua script, so a claim, a
completion or a lease expiry is all-or-nothing however many hosts race; Redis
runs scripts one at a time, as SQLite's write lock does for the local store.

Keys share the prefix ``fastdeploy:{<namespace>}:`` (the braces keep them in
one hash slot). A request is a hash ``req:<id>`` and its inputs are hashes
``item:<n>`` with consecutive numbers. Queued inputs of stage s are a list
``q:<s>``, oldest at the head, so a KEDA Redis scaler can read its length;
an input failed or finished while still listed stays there as a tombstone
and is skipped by the next claim. Leases, deadlines, result expiry and due
webhooks are sorted sets scored by time. Wake-ups are pub/sub messages on
``work:<s>`` and ``results``: a waiter subscribes once and keeps its
subscription, so a message that comes between "read the store" and "wait"
is buffered, not lost.

Times are the callers' clocks (passed in), as with the embedded store: hosts
that share a Redis must keep their clocks in sync (NTP), or leases and
deadlines drift by the difference.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

import orjson
import redis

from fastdeploy.store.base import (ATTEMPTS_EXHAUSTED, DEADLINE_EXCEEDED, DONE, FAILED, PENDING, Chunk,
                                   EnqueueOutcome, Failure, IdempotencyConflict, LoopInfo, NewRequest,
                                   QueueFullError, QueueItem, RequestResult, ResultsRing, Store,
                                   StoreClosedError, Webhook, WebhookJob)
from fastdeploy.store.rings import MAX_RING_BYTES, PLAIN_RING, finished_ring, results_ring

# ARGV[1] prefix, ARGV[2] now, ARGV[3] result_ttl_s; each script's own arguments follow.
PRELUDE = """
local p = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local function finish_request(rid, status, code, message)
  local r = p .. 'req:' .. rid
  redis.call('HSET', r, 'status', status, 'finished_at', ARGV[2], 'expires_at', now + ttl)
  if code then redis.call('HSET', r, 'error_code', code, 'error_message', message) end
  redis.call('ZADD', p .. 'expiry', now + ttl, rid)
  if redis.call('HEXISTS', r, 'webhook_url') == 1 then
    redis.call('HSET', r, 'webhook_status', 'pending', 'webhook_due_at', ARGV[2])
    redis.call('ZADD', p .. 'webhooks', now, rid)
  end
end

local function fail_request(rid, code, message)
  local r = p .. 'req:' .. rid
  if redis.call('HGET', r, 'status') ~= 'pending' then return 0 end
  finish_request(rid, 'failed', code, message)
  local first = tonumber(redis.call('HGET', r, 'first_item'))
  for id = first, first + tonumber(redis.call('HGET', r, 'n_items')) - 1 do
    local item = p .. 'item:' .. id
    local status = redis.call('HGET', item, 'status')
    if status == '0' or status == '1' then
      redis.call('HSET', item, 'status', 3)
      redis.call('HDEL', item, 'payload')
      redis.call('ZREM', p .. 'leases', id)
      redis.call('ZREM', p .. 'deadlines', id)
      redis.call('DECR', p .. 'unfinished')
    end
  end
  return 1
end
"""

ENQUEUE = PRELUDE + """
local rid, max_queue, n = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local deadline, hook, stages, key, fingerprint = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
if key ~= '' then
  local earlier = redis.call('HMGET', p .. 'idem:' .. key, 'rid', 'fingerprint')
  if earlier[1] then
    local expires = redis.call('HMGET', p .. 'req:' .. earlier[1], 'created_at', 'expires_at')
    if expires[1] and (not expires[2] or tonumber(expires[2]) >= now) then
      if earlier[2] ~= fingerprint then return {'conflict', earlier[1]} end
      return {'earlier', earlier[1]}
    end
  end
end
local queued = tonumber(redis.call('GET', p .. 'unfinished') or '0')
if queued + n > max_queue then return {'full', tostring(queued)} end
if key ~= '' then
  redis.call('HSET', p .. 'idem:' .. key, 'rid', rid, 'fingerprint', fingerprint)
end
local first = redis.call('INCRBY', p .. 'seq', n) - n + 1
local r = p .. 'req:' .. rid
redis.call('HSET', r, 'n_items', n, 'n_finished', 0, 'status', 'pending', 'created_at', ARGV[2],
           'first_item', first, 'webhook_attempts', 0)
if hook ~= '' then redis.call('HSET', r, 'webhook_url', hook) end
if key ~= '' then redis.call('HSET', r, 'idempotency_key', key) end
for i = 0, n - 1 do
  local id = first + i
  local item = p .. 'item:' .. id
  redis.call('HSET', item, 'rid', rid, 'idx', i, 'status', 0, 'payload', ARGV[12 + i], 'attempts', 0,
             'stage', 1, 'last_stage', stages, 'created_at', ARGV[2])
  if deadline ~= '' then
    redis.call('HSET', item, 'deadline', deadline)
    redis.call('ZADD', p .. 'deadlines', deadline, id)
  end
  redis.call('RPUSH', p .. 'q:1', id)
end
redis.call('INCRBY', p .. 'unfinished', n)
return {'queued', rid}
"""

CLAIM = PRELUDE + """
local max_items, lease_s, stage, max_attempts = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local failed = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', '(' .. ARGV[2])) do
  redis.call('ZREM', p .. 'leases', id)
  local item = p .. 'item:' .. id
  local f = redis.call('HMGET', item, 'status', 'attempts', 'rid', 'stage', 'deadline')
  if f[1] == '1' then
    if tonumber(f[2]) >= max_attempts then
      failed = failed + fail_request(f[3], ARGV[8],
        'input ' .. id .. ' was claimed ' .. f[2] .. ' times by loops that did not finish it ' ..
        '(crashed or killed); giving up (FASTDEPLOY_MAX_ATTEMPTS=' .. ARGV[7] .. ')')
    else
      redis.call('HSET', item, 'status', 0)
      redis.call('LPUSH', p .. 'q:' .. f[4], id)
      if f[5] then redis.call('ZADD', p .. 'deadlines', f[5], id) end
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'deadlines', '-inf', '(' .. ARGV[2])) do
  redis.call('ZREM', p .. 'deadlines', id)
  local f = redis.call('HMGET', p .. 'item:' .. id, 'status', 'rid')
  if f[1] == '0' then
    failed = failed + fail_request(f[2], ARGV[9],
      "the request's timeout passed before a loop could take it; not predicted")
  end
end
local out = {}
local queue = p .. 'q:' .. stage
while #out < max_items do
  local ids = redis.call('LPOP', queue, max_items - #out)
  if not ids then break end
  for _, id in ipairs(ids) do
    local item = p .. 'item:' .. id
    local f = redis.call('HMGET', item, 'status', 'stage')
    if f[1] == '0' and f[2] == stage then  -- anything else is a tombstone: failed or finished while listed
      redis.call('HSET', item, 'status', 1)
      local attempts = redis.call('HINCRBY', item, 'attempts', 1)
      redis.call('ZADD', p .. 'leases', now + lease_s, id)
      redis.call('ZREM', p .. 'deadlines', id)
      local g = redis.call('HMGET', item, 'rid', 'idx', 'payload', 'deadline', 'last_stage', 'created_at')
      local r = p .. 'req:' .. g[1]
      if redis.call('HEXISTS', r, 'first_claimed_at') == 0 then redis.call('HSET', r, 'first_claimed_at', ARGV[2]) end
      out[#out + 1] = {id, g[1], g[2], g[3], attempts, g[4] or '', g[5], g[6]}
    end
  end
end
return {failed, out}
"""

RENEW = PRELUDE + """
local until_ = now + tonumber(ARGV[4])
for i = 5, #ARGV do
  if redis.call('HGET', p .. 'item:' .. ARGV[i], 'status') == '1' then
    redis.call('ZADD', p .. 'leases', until_, ARGV[i])
  end
end
return 0
"""

COMPLETE = PRELUDE + """
local advanced, stored, finished = {}, 0, {}
for i = 5, #ARGV, 3 do
  local id, stage, output = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local item = p .. 'item:' .. id
  local f = redis.call('HMGET', item, 'status', 'stage', 'last_stage', 'rid', 'deadline')
  -- "stage matches": a late duplicate completion of an earlier stage changes nothing
  if (f[1] == '0' or f[1] == '1') and f[2] == stage then
    redis.call('ZREM', p .. 'leases', id)
    if tonumber(stage) < tonumber(f[3]) then
      local next_stage = tonumber(stage) + 1
      redis.call('HSET', item, 'status', 0, 'stage', next_stage, 'payload', output, 'attempts', 0)
      redis.call('RPUSH', p .. 'q:' .. next_stage, id)
      if f[5] then redis.call('ZADD', p .. 'deadlines', f[5], id) end
      advanced[#advanced + 1] = next_stage
    else
      redis.call('HSET', item, 'status', 2, 'output', output)
      redis.call('HDEL', item, 'payload')
      redis.call('ZREM', p .. 'deadlines', id)
      redis.call('DECR', p .. 'unfinished')
      stored = stored + 1
      local r = p .. 'req:' .. f[4]
      if redis.call('HGET', r, 'status') == 'pending' then
        if redis.call('HINCRBY', r, 'n_finished', 1) >= tonumber(redis.call('HGET', r, 'n_items')) then
          finish_request(f[4], 'done')
          finished[#finished + 1] = f[4]
        end
      end
    end
  end
end
-- the finished requests as result() would read them, for the ring to carry; none when their
-- outputs alone pass ARGV[4] bytes, since the ring would not carry them: no use sending them back
local budget = tonumber(ARGV[4])
for n, rid in ipairs(finished) do
  local r = p .. 'req:' .. rid
  local f = redis.call('HMGET', r, 'created_at', 'first_claimed_at', 'finished_at', 'webhook_url', 'first_item',
                      'n_items')
  local outputs = {}
  for id = tonumber(f[5]), tonumber(f[5]) + tonumber(f[6]) - 1 do
    local output = redis.call('HGET', p .. 'item:' .. id, 'output')
    budget = budget - #output
    if budget < 0 then return {stored, advanced, {}} end
    outputs[#outputs + 1] = output
  end
  finished[n] = {rid, f[1], f[2], f[3], f[4], outputs}
end
return {stored, advanced, finished}
"""

FAIL = PRELUDE + """
for i = 6, #ARGV do fail_request(ARGV[i], ARGV[4], ARGV[5]) end
return 0
"""

DUE_WEBHOOKS = PRELUDE + """
local out = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', p .. 'webhooks', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))) do
  local r = p .. 'req:' .. rid
  redis.call('ZADD', p .. 'webhooks', now + tonumber(ARGV[5]), rid)
  redis.call('HSET', r, 'webhook_due_at', now + tonumber(ARGV[5]))
  local f = redis.call('HMGET', r, 'webhook_url', 'webhook_attempts')
  out[#out + 1] = {rid, f[1], f[2]}
end
return out
"""

RECORD_WEBHOOK = PRELUDE + """
local r = p .. 'req:' .. ARGV[4]
if redis.call('EXISTS', r) == 0 then return 0 end
redis.call('HSET', r, 'webhook_status', ARGV[5])
redis.call('HINCRBY', r, 'webhook_attempts', 1)
if ARGV[6] ~= '' then redis.call('HSET', r, 'webhook_error', ARGV[6]) else redis.call('HDEL', r, 'webhook_error') end
if ARGV[7] ~= '' then
  redis.call('HSET', r, 'webhook_due_at', ARGV[7])
  redis.call('ZADD', p .. 'webhooks', ARGV[7], ARGV[4])
else
  redis.call('HDEL', r, 'webhook_due_at')
  redis.call('ZREM', p .. 'webhooks', ARGV[4])
end
return 1
"""

SWEEP = PRELUDE + """
local swept = 0
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry', '-inf', '(' .. ARGV[2])) do
  local r = p .. 'req:' .. rid
  local f = redis.call('HMGET', r, 'webhook_status', 'first_item', 'n_items', 'idempotency_key')
  if f[1] ~= 'pending' then
    if f[2] then
      for id = tonumber(f[2]), tonumber(f[2]) + tonumber(f[3]) - 1 do redis.call('DEL', p .. 'item:' .. id) end
    end
    if f[4] and redis.call('HGET', p .. 'idem:' .. f[4], 'rid') == rid then redis.call('DEL', p .. 'idem:' .. f[4]) end
    redis.call('DEL', r, p .. 'chunks:' .. rid)
    redis.call('ZREM', p .. 'expiry', rid)
    swept = swept + 1
  end
end
return swept
"""

def key_prefix(namespace: str) -> str:
    return f"fastdeploy:{{{namespace}}}:"


def queue_key(namespace: str, stage: int) -> str:
    """The list of a stage's queued inputs (a KEDA Redis scaler reads its length)."""
    return f"{key_prefix(namespace)}q:{stage}"


POOL_WAIT_S = 30.0  # longest a caller waits for a free connection before the call fails

REQUEST_FIELDS = ("status", "error_code", "error_message", "created_at", "first_claimed_at", "finished_at",
                  "expires_at", "webhook_url", "webhook_status", "webhook_attempts", "webhook_error", "first_item",
                  "n_items")


class RedisStore(Store):
    def __init__(self, url: str, namespace: str, *, max_queue_length: int = 10000, max_attempts: int = 3,
                 result_ttl_s: float = 3600.0, loop_stale_s: float = 10.0, max_connections: int = 64,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.prefix = key_prefix(namespace)
        self.max_queue_length = max_queue_length
        self.max_attempts = max_attempts
        self.result_ttl_s = result_ttl_s
        self.loop_stale_s = loop_stale_s
        self.clock = clock
        self.closed = False
        # a blocking pool: past max_connections a caller (a greenlet of the API) waits for a free
        # connection instead of failing, so a burst of requests queues here rather than erroring
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=POOL_WAIT_S)
        self.client = redis.Redis(connection_pool=pool)
        self._scripts = {name: self.client.register_script(source) for name, source in {
            "enqueue": ENQUEUE, "claim": CLAIM, "renew": RENEW, "complete": COMPLETE, "fail": FAIL,
            "due_webhooks": DUE_WEBHOOKS, "record_webhook": RECORD_WEBHOOK, "sweep": SWEEP}.items()}
        self._subscriptions: dict[str, redis.client.PubSub] = {}
        self._subscriptions_pid = os.getpid()

    def _run(self, script: str, *args, client: redis.client.Pipeline | None = None) -> object:
        """Run a script now, or queue it on a pipeline (``client``) whose execute() returns its reply."""
        if self.closed:
            raise StoreClosedError(f"store {self.url} {self.prefix} is closed")
        common = [self.prefix, repr(self.clock()), repr(self.result_ttl_s)]
        return self._scripts[script](args=[*common, *["" if a is None else a for a in args]], client=client)

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def _ring(self, *channel: object, message: bytes = PLAIN_RING) -> None:
        """Wake the waiters of a channel ("work", stage) or ("results",), as the local store's doorbells do."""
        self.client.publish(self._key(*channel), message)

    # -- queue ------------------------------------------------------------

    def enqueue_many(self, requests: list[NewRequest]) -> list[EnqueueOutcome]:
        """One script per request (each atomic), all sent in one round trip, then one ring."""
        with self.client.pipeline(transaction=False) as pipe:
            for r in requests:
                self._run("enqueue", r.request_id, self.max_queue_length, len(r.payloads),
                          None if r.deadline is None else repr(r.deadline), r.webhook_url, r.stages,
                          r.idempotency_key, r.fingerprint, *r.payloads, client=pipe)
            replies = pipe.execute()
        outcomes: list[EnqueueOutcome] = []
        for request, (outcome, value) in zip(requests, replies, strict=True):
            value = value.decode()
            if outcome == b"full":
                outcomes.append(QueueFullError(int(value), len(request.payloads), self.max_queue_length))
            elif outcome == b"conflict":
                outcomes.append(IdempotencyConflict(request.idempotency_key, value))
            else:
                outcomes.append(value)
        if any(outcome == b"queued" for outcome, _ in replies):
            self._ring("work", 1)
        return outcomes

    def claim(self, max_items: int, lease_s: float, stage: int = 1) -> list[QueueItem]:
        failed, rows = self._run("claim", max_items, repr(lease_s), stage, self.max_attempts,
                                 ATTEMPTS_EXHAUSTED, DEADLINE_EXCEEDED)
        if failed:
            self._ring("results")
        return [QueueItem(item_id=int(r[0]), request_id=r[1].decode(), index=int(r[2]), payload=r[3],
                          attempts=int(r[4]), deadline=float(r[5]) if r[5] else None, stage=stage,
                          last_stage=int(r[6]), created_at=float(r[7])) for r in rows]

    def renew(self, item_ids: list[int], lease_s: float) -> None:
        self._run("renew", repr(lease_s), *item_ids)

    def complete(self, items: list[QueueItem], outputs: list[bytes]) -> None:
        args = []
        for item, output in zip(items, outputs, strict=True):
            args += [item.item_id, item.stage, output]
        stored, advanced, finished = self._run("complete", MAX_RING_BYTES, *args)
        for stage in set(advanced):
            self._ring("work", stage)
        if stored:
            self._ring("results", message=finished_ring([
                [rid.decode(), outputs, float(created), _float(claimed), float(done_at), url.decode() if url else None]
                for rid, created, claimed, done_at, url, outputs in finished]))

    def fail(self, request_ids: list[str], code: str, message: str) -> None:
        self._run("fail", code, message, *set(request_ids))
        self._ring("results")

    def add_chunks(self, items: list[QueueItem], chunks: list[bytes | None]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for item, chunk in zip(items, chunks, strict=True):
                if chunk is not None:
                    pipe.rpush(self._key("chunks", item.request_id), b"%d:%s" % (item.index, chunk))
            pipe.publish(self._key("results"), PLAIN_RING)
            pipe.execute()

    def chunks(self, request_id: str, after_chunk_id: int = 0) -> list[Chunk]:
        """A request's chunks form one list, so a chunk's id is its position in it (from 1)."""
        rows = self.client.lrange(self._key("chunks", request_id), after_chunk_id, -1)
        out = []
        for position, row in enumerate(rows, start=after_chunk_id + 1):
            index, data = row.split(b":", 1)
            out.append(Chunk(position, int(index), data))
        return out

    # -- results ----------------------------------------------------------

    def result(self, request_id: str) -> RequestResult | None:
        row = dict(zip(REQUEST_FIELDS, self.client.hmget(self._key("req", request_id), REQUEST_FIELDS), strict=True))
        if row["status"] is None:
            return None
        row = {k: v.decode() if v is not None else None for k, v in row.items()}
        if row["expires_at"] is not None and float(row["expires_at"]) < self.clock():
            return None
        outputs = None
        if row["status"] == DONE:  # a finished request's outputs never change again
            first = int(row["first_item"])
            with self.client.pipeline(transaction=False) as pipe:
                for item_id in range(first, first + int(row["n_items"])):
                    pipe.hget(self._key("item", item_id), "output")
                outputs = pipe.execute()
        url = row["webhook_url"]
        return RequestResult(
            request_id=request_id,
            status=row["status"],
            outputs=outputs,
            failure=Failure(row["error_code"], row["error_message"]) if row["status"] == FAILED else None,
            created_at=float(row["created_at"]),
            first_claimed_at=_float(row["first_claimed_at"]),
            finished_at=_float(row["finished_at"]),
            webhook=Webhook(url, row["webhook_status"], int(row["webhook_attempts"] or 0), row["webhook_error"])
            if url else None,
        )

    def finished(self, request_ids: list[str]) -> set[str]:
        with self.client.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.hget(self._key("req", request_id), "status")
            statuses = pipe.execute()
        pending = PENDING.encode()
        return {rid for rid, status in zip(request_ids, statuses, strict=True) if status not in (None, pending)}

    def queue_length(self) -> int:
        return int(self.client.get(self._key("unfinished")) or 0)

    def waiting(self, stage: int = 1) -> int:
        return self.client.llen(self._key("q", stage))  # tombstones count too: it is a hint

    def wait_for_results(self, timeout_s: float) -> ResultsRing | None:
        messages = self._wait_for_messages(self._key("results"), timeout_s)
        return None if messages is None else results_ring(messages)

    def stop_waiting_for_results(self) -> None:
        subscription = (self._subscriptions.pop(self._key("results"), None)
                        if self._subscriptions_pid == os.getpid() else None)
        if subscription is not None:
            subscription.close()

    def wait_for_work(self, timeout_s: float, stage: int = 1) -> bool:
        return self._wait_for_messages(self._key("work", stage), timeout_s) is not None

    def _wait_for_messages(self, channel: str, timeout_s: float) -> list[bytes] | None:
        """The messages published since the last wait, once one came within timeout_s (else None).

        The subscription stays between waits, so none is missed in between.
        """
        if self.closed:
            raise StoreClosedError(f"store {self.url} {self.prefix} is closed")
        if self._subscriptions_pid != os.getpid():  # a forked child listens on connections of its own
            self._subscriptions, self._subscriptions_pid = {}, os.getpid()
        subscription = self._subscriptions.get(channel)
        if subscription is None:
            subscription = self._subscriptions[channel] = self.client.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(channel)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                message = subscription.get_message(timeout=max(remaining, 0.0))
                if message is not None:
                    messages = [message["data"]]
                    while (message := subscription.get_message(timeout=0)) is not None:
                        messages.append(message["data"])
                    return messages
                if remaining <= 0:
                    return None
        except Exception:
            if self.closed:  # closed by another thread while this one waited
                raise StoreClosedError(f"store {self.url} {self.prefix} is closed") from None
            raise

    # -- loops --------------------------------------------------------------

    def heartbeat(self, info: LoopInfo) -> None:
        self.client.hset(self._key("loops"), info.loop_id, orjson.dumps(dataclasses.asdict(info)))

    def remove_loop(self, loop_id: str) -> None:
        self.client.hdel(self._key("loops"), loop_id)

    def loops(self) -> list[LoopInfo]:
        infos = [LoopInfo(**orjson.loads(raw)) for raw in self.client.hvals(self._key("loops"))]
        return sorted(infos, key=lambda info: info.heartbeat_at, reverse=True)

    # -- webhooks -----------------------------------------------------------

    def due_webhooks(self, limit: int, lease_s: float) -> list[WebhookJob]:
        rows = self._run("due_webhooks", limit, repr(lease_s))
        return [WebhookJob(request_id=r[0].decode(), url=r[1].decode(), attempts=int(r[2])) for r in rows]

    def record_webhook(self, request_id: str, *, delivered: bool, error: str | None,
                       retry_at: float | None) -> None:
        status = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        self._run("record_webhook", request_id, status, error, None if retry_at is None else repr(retry_at))

    # -- housekeeping -------------------------------------------------------

    def sweep(self) -> int:
        swept = self._run("sweep")
        stale_before = self.clock() - 10 * self.loop_stale_s
        for loop in self.loops():
            if loop.heartbeat_at < stale_before:
                self.remove_loop(loop.loop_id)
        return int(swept)

    def delete_all(self) -> int:
        """Delete every key of this namespace (a recipe's whole queue and results); return how many."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start:start + 1000])
        return len(keys)

    def close(self) -> None:
        self.closed = True
        if self._subscriptions_pid == os.getpid():
            for subscription in self._subscriptions.values():
                subscription.close()
        self._subscriptions = {}
        self.client.close()


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)
