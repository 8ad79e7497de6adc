package redislimit

import "github.com/redis/go-redis/v9"

// Each script runs atomically in Redis: no other client's command runs
// between its reads and its writes, so the limits hold exactly however
// many replicas ask at once.

// admitScript counts one request and holds tokens in a window's hash
// (KEYS[1]) when both fit: ARGV rpm, tpm, tokens, the hash's time to live
// in ms; a limit of 0 is unlimited. It answers {admitted 0|1, requests,
// tokens held}, the counts after the admission or at the refusal.
var admitScript = redis.NewScript(`
local requests = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if (rpm > 0 and requests >= rpm) or (tpm > 0 and held + tokens > tpm) then
	return {0, requests, held}
end
requests = redis.call('HINCRBY', KEYS[1], 'r', 1)
if tpm > 0 then
	held = redis.call('HINCRBY', KEYS[1], 't', tokens)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, requests, held}
`)

// settleScript gives ARGV[1] unused tokens back to a window's hash
// (KEYS[1]), if the window is still kept; never below zero.
var settleScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
local held = redis.call('HINCRBY', KEYS[1], 't', -tonumber(ARGV[1]))
if held < 0 then
	redis.call('HSET', KEYS[1], 't', 0)
end
return 1
`)

// occupyScript adds lease ARGV[1] to every slot's sorted set (KEYS),
// scored by its expiry (now + ARGV[2] ms, on Redis's clock), when every
// slot has fewer than its limit (ARGV[2+i]) of unexpired leases; else it
// adds nothing and answers the 1-based index of the first full slot. It
// answers 0 when the lease was added.
var occupyScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
	redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
	if redis.call('ZSCORE', key, ARGV[1]) == false and redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
		return i
	end
end
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
	redis.call('ZADD', key, now + ttl, ARGV[1])
	redis.call('PEXPIRE', key, ttl)
end
return 0
`)

// renewScript extends lease ARGV[1] in the slots (KEYS) where it still
// is by ARGV[2] ms from now; a lease that expired is not brought back
// (its place may have been taken).
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
	if redis.call('ZSCORE', key, ARGV[1]) then
		redis.call('ZADD', key, now + ttl, ARGV[1])
		redis.call('PEXPIRE', key, ttl)
	end
end
return 0
`)

// vacateScript removes lease ARGV[1] from the slots (KEYS).
var vacateScript = redis.NewScript(`
for _, key in ipairs(KEYS) do
	redis.call('ZREM', key, ARGV[1])
end
return 0
`)
