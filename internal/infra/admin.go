package infra

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tidygate/tidygate/internal/domain"
)

// AdminHandler serves the operational endpoints on the admin address
// (ADMIN_ADDR):
//
//   - GET /healthz: 200 {"status":"ok"} while the process runs;
//   - GET /readyz: pings every pool pools returns, concurrently, each within
//     its acquire timeout: 200 {"status":"ready","pools":{"shared":"ok"}}, or
//     503 {"status":"unavailable","pools":{"shared":"database unavailable: …"}};
//   - GET /debug/startup: the startup report as a JSON array of steps;
//   - GET /metrics: the delegate's Prometheus registry.
//
// No answer names the database's host, port, name or user: a pool's state
// is the client-safe message of its error, never the driver's error.
// pools is called on each /readyz request, so it may list pools opened after
// the handler was built; nil means none.
func (d *Delegate) AdminHandler(pools func() []*Pool) http.Handler {
	mux := http.NewServeMux()
	addProbes(mux, pools, true)
	mux.HandleFunc("GET /debug/startup", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, startupJSON(d.Startup.Steps()))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	return mux
}

// ProbeHandler serves the probes the API address keeps for load balancers,
// and nothing else: GET /healthz as AdminHandler does, and GET /readyz with
// the same checks but only the verdict, {"status":"ready"} (200) or
// {"status":"unavailable"} (503). Anyone who can reach the API can ask; the
// reasons are on the admin address.
func (d *Delegate) ProbeHandler(pools func() []*Pool) http.Handler {
	mux := http.NewServeMux()
	addProbes(mux, pools, false)
	return mux
}

// addProbes adds /healthz and /readyz to mux; detail says whether /readyz
// names each pool and its state.
func addProbes(mux *http.ServeMux, pools func() []*Pool, detail bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var list []*Pool
		if pools != nil {
			list = pools()
		}
		writeReadiness(r.Context(), w, list, detail)
	})
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"` // "ready" or "unavailable"
	Pools  map[string]string `json:"pools"`  // pool name → "ok" or why it is not
}

// SafeReason is what an unauthenticated answer may say about err: the
// client-safe message of the *domain.Error in its chain, without the
// driver's cause (which names hosts, ports, databases and users), or a
// generic sentence when err carries none.
func SafeReason(err error) string {
	if e, ok := errors.AsType[*domain.Error](err); ok {
		return e.Message
	}
	return "database unavailable"
}

// writeReadiness pings the distinct pools in list concurrently and answers
// 200 when all of them answer, 503 otherwise; detail adds each pool's state.
func writeReadiness(ctx context.Context, w http.ResponseWriter, list []*Pool, detail bool) {
	byName := map[string]*Pool{}
	for _, p := range list {
		if p != nil {
			byName[p.info.Name] = p
		}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		body = readiness{Status: "ready", Pools: make(map[string]string, len(byName))}
	)
	for name, p := range byName {
		wg.Go(func() {
			state := "ok"
			if err := p.Ping(ctx); err != nil {
				state = SafeReason(err)
			}
			mu.Lock()
			body.Pools[name] = state
			mu.Unlock()
		})
	}
	wg.Wait()
	status := http.StatusOK
	for _, state := range body.Pools {
		if state != "ok" {
			body.Status, status = "unavailable", http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if !detail {
		writeJSON(w, status, map[string]string{"status": body.Status})
		return
	}
	writeJSON(w, status, body)
}

// stepJSON is one step of /debug/startup.
type stepJSON struct {
	Seq        int       `json:"seq"`
	Component  string    `json:"component"`
	DurationMS float64   `json:"duration_ms"`
	Pool       *poolJSON `json:"pool,omitempty"`
}

// poolJSON describes a pool in /debug/startup.
type poolJSON struct {
	Name             string `json:"name"`
	ApplicationName  string `json:"application_name"`
	MinConns         int32  `json:"min_conns"`
	MaxConns         int32  `json:"max_conns"`
	Mode             string `json:"mode"`
	AcquireTimeoutMS int64  `json:"acquire_timeout_ms"`
}

func startupJSON(steps []Step) []stepJSON {
	out := make([]stepJSON, len(steps))
	for i, s := range steps {
		out[i] = stepJSON{Seq: s.Seq, Component: s.Component, DurationMS: float64(s.Duration.Microseconds()) / 1000}
		if p := s.Pool; p != nil {
			out[i].Pool = &poolJSON{
				Name: p.Name, ApplicationName: p.ApplicationName, MinConns: p.MinConns, MaxConns: p.MaxConns,
				Mode: p.Mode, AcquireTimeoutMS: p.AcquireTimeout.Milliseconds(),
			}
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
