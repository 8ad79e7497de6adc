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
// ReverseProxy, and, once the upstream's answer has begun, the call's
// record made durable (an Appender's append, or whatever record the caller
// gives) before the answer is copied to the client. With the Appender it
// does nothing a gateway with tidygate's guarantees could leave out, and
// nothing more: the added latency it measures is the floor as this machine
// serves it when the three parts follow one another in one request, with
// the scheduling between them that the probes, each measured on its own, do
// not pay.
type FloorGateway struct {
	proxy http.Handler
	db    *pgxpool.Pool
}

// NewFloorGateway returns a FloorGateway to target, with its round trips
// on db; record makes one call's record durable and returns once it is.
func NewFloorGateway(target *url.URL, db *pgxpool.Pool, record func(context.Context) error) *FloorGateway {
	proxy := newReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error { return record(resp.Request.Context()) }
	return &FloorGateway{db: db, proxy: withBufferedBody(proxy)}
}

// ServeHTTP makes the round trip, then forwards the request; the proxy
// makes the record durable before it answers.
func (g *FloorGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var one int
	if err := g.db.QueryRow(r.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		http.Error(w, fmt.Sprintf("SELECT 1: %v", err), http.StatusServiceUnavailable)
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// Appender is the floor's record: an append of AppendSize bytes to a file
// of its own, made durable with fdatasync, one at a time, as a journal's
// group commit of one.
type Appender struct {
	mu    sync.Mutex
	fsync *FsyncProbe
}

// NewAppender returns an Appender to a new file in dir; Close removes it.
func NewAppender(dir string) (*Appender, error) {
	fsync, err := NewFsyncProbe(dir)
	if err != nil {
		return nil, err
	}
	return &Appender{fsync: fsync}, nil
}

// Append appends one record and waits for its fdatasync.
func (a *Appender) Append(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.fsync.Measure(ctx)
	return err
}

// Close removes the append file.
func (a *Appender) Close() error { return a.fsync.Close() }
