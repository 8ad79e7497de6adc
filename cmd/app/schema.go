package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// schemaGate applies the gateway's migrations in the background until they
// succeed, so that tidygate starts while the database is down and becomes
// ready when it appears, without a restart.
type schemaGate struct {
	logger  *slog.Logger
	apply   func(context.Context) error
	mu      sync.Mutex
	lastErr error
	done    chan struct{}
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newSchemaGate(logger *slog.Logger, apply func(context.Context) error) *schemaGate {
	return &schemaGate{logger: logger, apply: apply, done: make(chan struct{}), stopped: make(chan struct{}),
		lastErr: errNotYet}
}

var errNotYet = &gateError{"database schema not applied yet"}

type gateError struct{ msg string }

func (e *gateError) Error() string { return e.msg }

// attemptTimeout bounds one attempt at the schema.
const attemptTimeout = 30 * time.Second

// join applies the schema once, as the gateway's registration: on success
// the gate opens at once, and start has nothing left to do; on failure it
// returns why, and start retries in the background.
func (g *schemaGate) join(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	err := g.apply(actx)
	g.mu.Lock()
	g.lastErr = err
	g.mu.Unlock()
	if err == nil {
		g.logger.Info("gateway schema ready")
		close(g.done)
	}
	return err
}

// start applies the schema in the background, unless join already has,
// retrying with a capped backoff until it succeeds or stop is called.
func (g *schemaGate) start(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	g.cancel = cancel
	go func() {
		defer close(g.stopped)
		select {
		case <-g.done:
			return
		default:
		}
		backoff := 250 * time.Millisecond
		for {
			if g.join(ctx) == nil {
				return
			}
			err := g.err()
			g.logger.Warn("gateway schema not ready; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}()
}

func (g *schemaGate) stop() {
	if g.cancel != nil {
		g.cancel()
		<-g.stopped
	}
}

// err returns nil once the schema is applied, else why it is not.
func (g *schemaGate) err() error {
	select {
	case <-g.done:
		return nil
	default:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// guard answers /readyz with 503 until the schema is applied, and passes
// everything else (and /readyz afterwards) to next. detail adds why, in
// words that name no host, port, database or user.
func (g *schemaGate) guard(next http.Handler, detail bool) http.Handler {
	return guardReadyz(next, detail, "schema", "not applied yet (the log says why): ", g.err)
}

// guardReadyz answers /readyz with 503 while unready returns an error, and
// passes everything else (and /readyz while it returns nil) to next. With
// detail, the answer's field name says prefix followed by the error's
// client-safe reason.
func guardReadyz(next http.Handler, detail bool, name, prefix string, unready func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if err := unready(); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				body := map[string]any{"status": "unavailable"}
				if detail {
					body[name] = prefix + infra.SafeReason(err)
				}
				_ = json.NewEncoder(w).Encode(body)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// gatedKeys answers every key lookup with domain.KindUnavailable until the
// gateway's schema is applied, so that a call arriving while the database
// was down at start, or while the migrations still run, gets a 503 with
// Retry-After instead of the driver's "relation does not exist".
type gatedKeys struct {
	ports.KeyStore
	gate *schemaGate
}

// CallerByKeyHash implements ports.KeyStore.
func (k gatedKeys) CallerByKeyHash(ctx context.Context, hash string) (domain.Caller, error) {
	if err := k.gate.err(); err != nil {
		return domain.Caller{}, domain.Wrap(domain.KindUnavailable, err, "the gateway's tables are not ready yet")
	}
	return k.KeyStore.CallerByKeyHash(ctx, hash)
}
