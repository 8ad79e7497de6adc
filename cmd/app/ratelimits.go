package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/adapters/redislimit"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// newRateLimiter is the rate limiter the gateway consults: shared by the
// replicas through Redis when REDIS_URL is set, else this process's own,
// with a warning when REPLICAS says there are others.
func newRateLimiter(lc fx.Lifecycle, cfg infra.Config, d *infra.Delegate) (ports.RateLimiter, error) {
	if cfg.RedisURL == "" {
		if cfg.Replicas > 1 {
			d.Logger.Warn("rate and concurrency limits are per process: with REPLICAS>1 each key may make up to REPLICAS times its rpm, tpm and concurrent calls; set REDIS_URL to share them",
				"replicas", cfg.Replicas)
		}
		return ratelimit.NewWindowed(cfg.RateLimitWindow), nil
	}
	opts, err := redislimit.ParseURL(cfg.RedisURL, cfg.RedisTimeout)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL=%s: %w", infra.RedactURL(cfg.RedisURL), err)
	}
	// go-redis logs each failed dial; the limiter logs each outage once.
	redis.SetLogger(quietRedis{})
	opts.ClientName = "tidygate"
	rdb := redis.NewClient(opts)
	l := redislimit.New(rdb, redislimit.Options{
		Window:               cfg.RateLimitWindow,
		Timeout:              cfg.RedisTimeout,
		LeaseTTL:             cfg.RateLimitLeaseTTL,
		AllowWhenUnavailable: cfg.RateLimitWhenUnavailable == "allow",
		Logger:               d.Logger.With("component", "ratelimit"),
		Observer:             newRedisObserver(d.Registry),
	})
	lc.Append(fx.StopHook(func() error {
		l.Close()
		return rdb.Close()
	}))
	d.Logger.Info("rate and concurrency limits are shared by the replicas through Redis",
		"redis", infra.RedactURL(cfg.RedisURL), "when_unavailable", cfg.RateLimitWhenUnavailable,
		"timeout", cfg.RedisTimeout, "window", cfg.RateLimitWindow)
	return l, nil
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// redisObserver reports the shared limiter's Redis on /metrics:
// tidygate_rate_limiter_redis_up, tidygate_rate_limiter_redis_transitions_total{to}
// and tidygate_rate_limiter_decided_without_redis_total{decision}.
type redisObserver struct {
	up          prometheus.Gauge
	transitions *prometheus.CounterVec
	decided     *prometheus.CounterVec
}

func newRedisObserver(reg prometheus.Registerer) redisObserver {
	o := redisObserver{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidygate_rate_limiter_redis_up",
			Help: "1 while the shared rate limiter reaches Redis, 0 while it cannot (calls are then refused or admitted uncounted, per RATE_LIMIT_WHEN_UNAVAILABLE).",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidygate_rate_limiter_redis_transitions_total",
			Help: "Times the shared rate limiter lost (to=down) or regained (to=up) Redis.",
		}, []string{"to"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidygate_rate_limiter_decided_without_redis_total",
			Help: "Calls (admissions and concurrency places) decided without Redis because it was unreachable: decision=deny refused, decision=allow admitted uncounted.",
		}, []string{"decision"}),
	}
	reg.MustRegister(o.up, o.transitions, o.decided)
	return o
}

func (o redisObserver) Available(up bool) {
	if up {
		o.up.Set(1)
	} else {
		o.up.Set(0)
	}
	o.transitions.WithLabelValues(map[bool]string{true: "up", false: "down"}[up]).Inc()
}

func (o redisObserver) DecidedWithoutRedis(allowed bool) {
	o.decided.WithLabelValues(map[bool]string{true: "allow", false: "deny"}[allowed]).Inc()
}
