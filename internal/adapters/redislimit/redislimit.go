// Package redislimit is the rate limiter shared by every replica: the
// requests and tokens per window of each key, user, team, model and
// provider account, and the calls in flight per slot,
// counted in Redis by atomic Lua scripts, so that the limits hold in
// aggregate however many replicas run.
//
// What Redis holds, all under one key prefix (and one hash tag, so that a
// Redis Cluster keeps every script's keys on one node):
//
//   - PREFIXw:COUNTER:WINDOW_START_MS, a hash of the requests counted and
//     the tokens held or used in one fixed window by one limit's owner
//     (domain.RateLimit.Counter: a key's ID, "user:NAME", "team:NAME",
//     "model:NAME", "provider/NAME"); it expires two windows after it was
//     last written. One call's limits are checked and counted by one
//     script: all of them or none.
//   - PREFIXs:SLOT_NAME, a sorted set of the calls in flight in one slot:
//     each call's lease id scored by its expiry (Redis's own clock). The
//     process holding a lease renews it every third of its time to live
//     while the call runs; a replica that dies leaves leases that expire,
//     so its places come back by themselves.
//
// Windows are aligned to the Unix epoch on the replicas' clocks (the time
// the gateway passes in), so every replica counts into the same window as
// long as their clocks agree (NTP); a skew of s lets at most the calls of s
// at a window's edge count into the neighbouring window.
//
// Every Redis operation is bounded by Options.Timeout. When Redis cannot be
// reached, calls are refused with a domain.KindUnavailable error
// (Options.AllowWhenUnavailable false) or admitted uncounted (true); the
// change is logged once per transition and reported to the Observer. While
// Redis is down, at most one call per ProbeInterval tries it; the others
// are decided at once, so that answers stay fast, and the first success
// brings the limits back.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.RateLimiter = (*Limiter)(nil)

// Observer is told of the limiter's availability, for metrics.
type Observer interface {
	// Available reports that Redis became reachable (true) or unreachable
	// (false); it is called once at start (true) and at each transition.
	Available(up bool)
	// DecidedWithoutRedis counts a call admitted (allowed true) or refused
	// because Redis was unreachable.
	DecidedWithoutRedis(allowed bool)
}

type unobserved struct{}

func (unobserved) Available(bool)           {}
func (unobserved) DecidedWithoutRedis(bool) {}

// Options tune the limiter; a zero field means its default.
type Options struct {
	Window               time.Duration // rpm and tpm windows; default a minute
	Timeout              time.Duration // bound on each Redis operation; default 500ms
	LeaseTTL             time.Duration // a call's place in a slot without renewal; default 30s
	ProbeInterval        time.Duration // while Redis is down, how often a call tries it; default 1s
	AllowWhenUnavailable bool          // admit calls uncounted while Redis is down; default refuse
	Prefix               string        // key prefix; default "tidygate:{rl}:"
	Logger               *slog.Logger
	Observer             Observer
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "tidygate:{rl}:"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = unobserved{}
	}
	return o
}

// Limiter is the shared rate limiter. Close stops its lease renewal.
type Limiter struct {
	rdb  redis.UniversalClient
	opts Options

	mu     sync.Mutex
	leases map[string][]string // live leases by id: the Redis keys of their slots

	down      atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds of the last try while down

	stop chan struct{}
	done chan struct{}
}

// ParseURL reads a redis:// or rediss:// URL (redis://[user:password@]host:port/db)
// into client options whose dial, read, write and pool waits are bounded by
// timeout.
func ParseURL(url string, timeout time.Duration) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries = 1
	return o, nil
}

// New returns a limiter counting in the Redis rdb reaches, and starts the
// renewal of its leases. It does not contact Redis: a Redis that is down at
// start is handled like one that goes down later.
func New(rdb redis.UniversalClient, opts Options) *Limiter {
	l := &Limiter{rdb: rdb, opts: opts.withDefaults(), leases: make(map[string][]string),
		stop: make(chan struct{}), done: make(chan struct{})}
	l.opts.Observer.Available(true)
	go l.renew()
	return l
}

// Close stops renewing leases (their places expire after LeaseTTL unless
// vacated) and closes nothing else: the client is the caller's.
func (l *Limiter) Close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
		<-l.done
	}
}

// Admit counts one request and holds tokens in the window containing now
// against every limit, or refuses the call and holds nothing.
func (l *Limiter) Admit(ctx context.Context, limits []domain.RateLimit, tokens int, now time.Time) (ports.RateHold, error) {
	start := now.Truncate(l.opts.Window)
	end := start.Add(l.opts.Window)
	hold := ports.RateHold{Window: start}
	if err := domain.CheckRateFit(limits, tokens); err != nil {
		return hold, err
	}
	var counted []domain.RateLimit
	var keys []string
	args := []any{tokens, (2 * l.opts.Window).Milliseconds()}
	for _, lim := range limits {
		if lim.Limited() {
			counted = append(counted, lim)
			keys = append(keys, l.windowKey(lim.Counter(), start))
			args = append(args, lim.RPM, lim.TPM)
		}
	}
	if len(counted) == 0 {
		return hold, nil
	}
	if l.skip() {
		return ports.RateHold{}, l.unavailable(nil)
	}
	var res []int64
	err := l.do(ctx, func(ctx context.Context) (err error) {
		res, err = admitScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
		return err
	})
	if err == nil && len(res) != 2+2*len(counted) {
		err = fmt.Errorf("the admission script answered %v", res)
	}
	if err != nil {
		return ports.RateHold{}, l.unavailable(err)
	}
	for i, lim := range counted {
		hold.Limits = hold.Limits.Tighter(lim.At(int(res[2+2*i]), int(res[3+2*i]), end))
	}
	if refused := int(res[1]); res[0] == 0 && refused >= 1 && refused <= len(counted) {
		lim := counted[refused-1]
		why := lim.Refusal(tokens, int(res[2*refused]), int(res[2*refused+1]))
		return ports.RateHold{Window: start, Limits: hold.Limits}, domain.RateLimited(why, end.Sub(now))
	}
	for _, lim := range counted {
		if lim.TPM > 0 {
			hold.Counters = append(hold.Counters, lim.Counter())
		}
	}
	if len(hold.Counters) > 0 {
		hold.Tokens = tokens
	}
	return hold, nil
}

// Settle gives back the part of the hold the call did not use.
func (l *Limiter) Settle(ctx context.Context, h ports.RateHold, used int) error {
	unused := h.Tokens - min(max(used, 0), h.Tokens)
	if unused == 0 || len(h.Counters) == 0 {
		return nil
	}
	keys := make([]string, len(h.Counters))
	for i, name := range h.Counters {
		keys[i] = l.windowKey(name, h.Window)
	}
	err := l.do(ctx, func(ctx context.Context) error {
		return settleScript.Run(ctx, l.rdb, keys, unused).Err()
	})
	if err != nil {
		return domain.Wrap(domain.KindUnavailable, err, "giving back unused tokens per minute in Redis failed")
	}
	return nil
}

// Occupy takes a place in every counted slot, or in none.
func (l *Limiter) Occupy(ctx context.Context, id string, slots []ports.Slot) (ports.Lease, error) {
	lease := ports.Lease{ID: id}
	var keys []string
	args := []any{id, l.opts.LeaseTTL.Milliseconds()}
	var counted []ports.Slot
	for _, s := range slots {
		if s.Limit > 0 {
			counted = append(counted, s)
			keys = append(keys, l.slotKey(s.Name))
			args = append(args, s.Limit)
		}
	}
	if len(counted) == 0 {
		return lease, nil
	}
	if l.skip() {
		return lease, l.unavailable(nil)
	}
	var full int64
	err := l.do(ctx, func(ctx context.Context) (err error) {
		full, err = occupyScript.Run(ctx, l.rdb, keys, args...).Int64()
		return err
	})
	switch {
	case err != nil:
		return lease, l.unavailable(err)
	case full > 0 && int(full) <= len(counted):
		return lease, &ports.SlotFullError{Slot: counted[full-1]}
	}
	for _, s := range counted {
		lease.Slots = append(lease.Slots, s.Name)
	}
	l.mu.Lock()
	l.leases[id] = keys
	l.mu.Unlock()
	return lease, nil
}

// Vacate gives the lease's places back; the lease is no longer renewed
// even when Redis cannot be reached (its places then expire).
func (l *Limiter) Vacate(ctx context.Context, lease ports.Lease) error {
	if len(lease.Slots) == 0 {
		return nil
	}
	l.mu.Lock()
	delete(l.leases, lease.ID)
	l.mu.Unlock()
	keys := make([]string, len(lease.Slots))
	for i, name := range lease.Slots {
		keys[i] = l.slotKey(name)
	}
	err := l.do(ctx, func(ctx context.Context) error {
		return vacateScript.Run(ctx, l.rdb, keys, lease.ID).Err()
	})
	if err != nil {
		return domain.Wrap(domain.KindUnavailable, err, fmt.Sprintf("giving back concurrency places in Redis failed; they expire within %s", l.opts.LeaseTTL))
	}
	return nil
}

// renew extends every live lease each third of LeaseTTL, so that only
// the leases of a process that stopped renewing them expire.
func (l *Limiter) renew() {
	defer close(l.done)
	t := time.NewTicker(l.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.renewOnce()
		}
	}
}

func (l *Limiter) renewOnce() {
	l.mu.Lock()
	live := make(map[string][]string, len(l.leases))
	for id, keys := range l.leases {
		live[id] = keys
	}
	l.mu.Unlock()
	if len(live) == 0 {
		return
	}
	_ = l.do(context.Background(), func(ctx context.Context) error {
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for id, keys := range live {
				// Eval, not EvalSha: a pipeline cannot load a script Redis lost.
				renewScript.Eval(ctx, p, keys, id, l.opts.LeaseTTL.Milliseconds())
			}
			return nil
		})
		return err
	})
}

// do runs one Redis operation within Options.Timeout and notes whether
// Redis answered.
func (l *Limiter) do(ctx context.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	err := op(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		l.lastProbe.Store(time.Now().UnixNano())
		if l.down.CompareAndSwap(false, true) {
			l.opts.Observer.Available(false)
			l.opts.Logger.Error("the shared rate limiter cannot reach Redis: "+l.whileDown(),
				slog.String("error", err.Error()), slog.Duration("timeout", l.opts.Timeout))
		}
		return err
	}
	if l.down.CompareAndSwap(true, false) {
		l.opts.Observer.Available(true)
		l.opts.Logger.Info("the shared rate limiter reaches Redis again: limits are enforced across replicas")
	}
	return nil
}

// skip reports that Redis is down and was tried less than ProbeInterval
// ago: the call is decided without it.
func (l *Limiter) skip() bool {
	if !l.down.Load() {
		return false
	}
	last := l.lastProbe.Load()
	if time.Since(time.Unix(0, last)) < l.opts.ProbeInterval {
		return true
	}
	// One caller per interval gets to try.
	return !l.lastProbe.CompareAndSwap(last, time.Now().UnixNano())
}

// unavailable decides a call Redis could not count: nil (admitted
// uncounted) or a refusal, as configured.
func (l *Limiter) unavailable(cause error) error {
	l.opts.Observer.DecidedWithoutRedis(l.opts.AllowWhenUnavailable)
	if l.opts.AllowWhenUnavailable {
		return nil
	}
	msg := "rate limits cannot be checked: the shared rate limiter's Redis is unreachable and RATE_LIMIT_WHEN_UNAVAILABLE is deny; retry shortly"
	return &domain.Error{Kind: domain.KindUnavailable, Code: "rate_limiter_unavailable", Message: msg,
		RetryAfter: time.Second, Err: cause}
}

func (l *Limiter) whileDown() string {
	if l.opts.AllowWhenUnavailable {
		return "calls are admitted without rate or concurrency limits until it answers (RATE_LIMIT_WHEN_UNAVAILABLE=allow)"
	}
	return "calls with limits are refused with 503 until it answers (RATE_LIMIT_WHEN_UNAVAILABLE=deny)"
}

func (l *Limiter) windowKey(counter string, start time.Time) string {
	return l.opts.Prefix + "w:" + counter + ":" + strconv.FormatInt(start.UnixMilli(), 10)
}

func (l *Limiter) slotKey(name string) string { return l.opts.Prefix + "s:" + name }
