package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// FloorGateway is the floor's parts composed in one process: for each
// request, one PostgreSQL round trip (a prepared SELECT 1 from a pool, in
// place of a reservation), the request forwarded by NewProxy's
// ReverseProxy, and, once the upstream's answer has begun, one append of
// AppendSize bytes made durable with fdatasync (in place of the call's
// record) before the answer is copied to the client. It does nothing a
// gateway with tidygate's guarantees could leave out, and nothing more: the
// added latency it measures is the floor as this machine serves it when
// the three parts follow one another in one request, with the scheduling
// between them that the probes, each measured on its own, do not pay.
type FloorGateway struct {
	proxy http.Handler
	db    *pgxpool.Pool

	mu    sync.Mutex // one append and its fdatasync at a time, as a journal's group commit
	fsync *FsyncProbe
}

// NewFloorGateway returns a FloorGateway to target, with its round trips
// on db and its appends to a file of its own in dir; Close removes it.
func NewFloorGateway(target *url.URL, db *pgxpool.Pool, dir string) (*FloorGateway, error) {
	fsync, err := NewFsyncProbe(dir)
	if err != nil {
		return nil, err
	}
	g := &FloorGateway{db: db, fsync: fsync}
	proxy := newReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error { return g.durable(resp.Request.Context()) }
	g.proxy = withBufferedBody(proxy)
	return g, nil
}

// ServeHTTP makes the round trip, then forwards the request; the proxy
// makes the append durable before it answers.
func (g *FloorGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var one int
	if err := g.db.QueryRow(r.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		http.Error(w, fmt.Sprintf("SELECT 1: %v", err), http.StatusServiceUnavailable)
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// durable appends one record and waits for its fdatasync.
func (g *FloorGateway) durable(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.fsync.Measure(ctx)
	return err
}

// Close removes the append file; the pool is the caller's.
func (g *FloorGateway) Close() error { return g.fsync.Close() }
