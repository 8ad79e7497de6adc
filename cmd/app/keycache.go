package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// keyLookup returns what the gateway authenticates callers with: with
// KEY_CACHE_TTL > 0 a postgres.KeyCache in front of keys, whose listener
// runs on its own connection (infra.SharedPool.ConnectListener) from start
// to stop, with its metrics on the delegate's registry; with 0, keys itself.
func keyLookup(lc fx.Lifecycle, d *infra.Delegate, shared *infra.SharedPool, keys *postgres.KeyStore) (ports.KeyStore, error) {
	if d.Config.KeyCacheTTL == 0 {
		return keys, nil
	}
	cache, err := postgres.NewKeyCache(keys, postgres.KeyCacheOptions{TTL: d.Config.KeyCacheTTL,
		Logger: d.Logger.With("component", "keycache")})
	if err != nil {
		return nil, err
	}
	if err := registerKeyCacheMetrics(d.Registry, cache); err != nil {
		return nil, err
	}
	var stop context.CancelFunc
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, stop = context.WithCancel(context.Background())
			go func() {
				defer close(done)
				cache.Listen(ctx, shared.ConnectListener)
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			stop()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	return cache, nil
}

// registerKeyCacheMetrics exports the cache's counters, read at each
// scrape: tidygate_key_cache_{hits,misses,notifications}_total,
// tidygate_key_cache_entries and tidygate_key_cache_listener_connected.
func registerKeyCacheMetrics(reg prometheus.Registerer, c *postgres.KeyCache) error {
	counter := func(name, help string, value func(postgres.KeyCacheStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value(c.Stats())) })
	}
	gauge := func(name, help string, value func(postgres.KeyCacheStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return value(c.Stats()) })
	}
	for _, m := range []prometheus.Collector{
		counter("tidygate_key_cache_hits_total", "API key lookups answered from the key cache.",
			func(s postgres.KeyCacheStats) int64 { return s.Hits }),
		counter("tidygate_key_cache_misses_total", "API key lookups that read PostgreSQL (unknown keys, first uses, entries older than KEY_CACHE_TTL, and every lookup while the listener is disconnected).",
			func(s postgres.KeyCacheStats) int64 { return s.Misses }),
		counter("tidygate_key_cache_notifications_total", "Notifications of key and budget changes the key cache applied.",
			func(s postgres.KeyCacheStats) int64 { return s.Notifications }),
		counter("tidygate_key_cache_listener_connections_total", "Connections the key cache's listener opened; more than one means it reconnected.",
			func(s postgres.KeyCacheStats) int64 { return s.Connections }),
		gauge("tidygate_key_cache_entries", "API keys held in the key cache now.",
			func(s postgres.KeyCacheStats) float64 { return float64(s.Entries) }),
		gauge("tidygate_key_cache_listener_connected", "1 while the key cache's listener is connected and the cache is used; 0 while every lookup reads PostgreSQL.",
			func(s postgres.KeyCacheStats) float64 {
				if s.Listening {
					return 1
				}
				return 0
			}),
	} {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}
