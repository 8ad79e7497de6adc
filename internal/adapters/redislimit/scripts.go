package redislimit

import "github.com/redis/go-redis/v9"

// Each script runs atomically in Redis: no other client's command runs
// between its reads and its writes, so the limits hold exactly however
// many replicas ask at once.

// admitScript counts one request and holds tokens in the windows' hashes
// (KEYS, one per limit) when they fit in every one: ARGV tokens, the
// hashes' time to live in ms, then each limit's rpm and tpm in KEYS'
// order; a limit of 0 is unlimited. It answers {admitted 0|1, the 1-based
// index of the first limit without room or 0, then each limit's requests
// and tokens held}, the counts after the admission or at the refusal.
var admitScript = redis.NewScript(`
local tokens = tonumber(ARGV[1])
local counts = {}
local refused = 0
for i, key in ipairs(KEYS) do
	local requests = tonumber(redis.call('HGET', key, 'r') or '0')
	local held = tonumber(redis.call('HGET', key, 't') or '0')
	local rpm, tpm = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
	if refused == 0 and ((rpm > 0 and requests >= rpm) or (tpm > 0 and held + tokens > tpm)) then
		refused = i
	end
	counts[2 * i - 1], counts[2 * i] = requests, held
end
if refused == 0 then
	for i, key in ipairs(KEYS) do
		counts[2 * i - 1] = redis.call('HINCRBY', key, 'r', 1)
		if tonumber(ARGV[2 * i + 2]) > 0 then
			counts[2 * i] = redis.call('HINCRBY', key, 't', tokens)
		end
		redis.call('PEXPIRE', key, ARGV[2])
	end
end
local out = {refused == 0 and 1 or 0, refused}
for _, n in ipairs(counts) do
	out[#out + 1] = n
end
return out
`)

// settleScript gives ARGV[1] unused tokens back to each window's hash
// (KEYS) that is still kept; never below zero.
var settleScript = redis.NewScript(`
for _, key in ipairs(KEYS) do
	if redis.call('EXISTS', key) == 1 then
		local held = redis.call('HINCRBY', key, 't', -tonumber(ARGV[1]))
		if held < 0 then
			redis.call('HSET', key, 't', 0)
		end
	end
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
