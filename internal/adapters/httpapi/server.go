package httpapi

import (
	"net/http"
	"time"
)

// Timeouts bound the phases of serving a request; a zero field means its default.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers. Default 10s.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included. (net/http
	// clears it once the body is read, so it does not limit the call.)
	// Default 60s.
	Read time.Duration
	// Write bounds a response from the moment the request's headers are read.
	// It is set per request, and streams replace it with a deadline per
	// event (Options.StreamWriteTimeout), so it never cuts a stream.
	// Default 300s, which must cover the slowest provider call with retries.
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next request.
	// Default 120s.
	Idle time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Read <= 0 {
		t.Read = 60 * time.Second
	}
	if t.Write <= 0 {
		t.Write = 300 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 120 * time.Second
	}
	return t
}

// MaxHeaderBytes bounds a request's line and headers together (net/http's
// default is 1 MiB). Clients send a few KiB; the bound keeps what a handler
// can quote back or log from them (a path, a header) small, on every
// server, before any key is checked. A request over it gets a 431.
const MaxHeaderBytes = 64 << 10

// NewServer returns an *http.Server for h on addr with the given timeouts.
// The write timeout is applied per request rather than as the server's
// WriteTimeout, which would cut every stream at the same age.
func NewServer(addr string, h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Addr:              addr,
		Handler:           writeDeadline(h, t.Write),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// writeDeadline sets each response's write deadline when its request arrives.
func writeDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}
