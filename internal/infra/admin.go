package infra

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves the operational endpoints:
//
//   - GET /healthz: 200 {"status":"ok"} while the process runs;
//   - GET /readyz: pings every pool pools returns, concurrently, each within
//     its acquire timeout: 200 {"status":"ready","pools":{"shared":"ok"}}, or
//     503 {"status":"unavailable","pools":{"shared":"database unavailable: …"}};
//   - GET /debug/startup: the startup report as a JSON array of steps;
//   - GET /metrics: the delegate's Prometheus registry.
//
// pools is called on each /readyz request, so it may list pools opened after
// the handler was built; nil means none.
func (d *Delegate) AdminHandler(pools func() []*Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var list []*Pool
		if pools != nil {
			list = pools()
		}
		writeReadiness(r.Context(), w, list)
	})
	mux.HandleFunc("GET /debug/startup", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, startupJSON(d.Startup.Steps()))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	return mux
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"` // "ready" or "unavailable"
	Pools  map[string]string `json:"pools"`  // pool name → "ok" or why it is not
}

// writeReadiness pings the distinct pools in list concurrently and answers
// 200 when all of them answer, 503 otherwise.
func writeReadiness(ctx context.Context, w http.ResponseWriter, list []*Pool) {
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
				state = err.Error()
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
	Target           string `json:"target"`
	AcquireTimeoutMS int64  `json:"acquire_timeout_ms"`
}

func startupJSON(steps []Step) []stepJSON {
	out := make([]stepJSON, len(steps))
	for i, s := range steps {
		out[i] = stepJSON{Seq: s.Seq, Component: s.Component, DurationMS: float64(s.Duration.Microseconds()) / 1000}
		if p := s.Pool; p != nil {
			out[i].Pool = &poolJSON{
				Name: p.Name, ApplicationName: p.ApplicationName, MinConns: p.MinConns, MaxConns: p.MaxConns,
				Mode: p.Mode, Target: p.Target, AcquireTimeoutMS: p.AcquireTimeout.Milliseconds(),
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
