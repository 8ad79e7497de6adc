package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// NewProxy returns the floor a gateway's added latency is compared with: a
// plain httputil.ReverseProxy to target. Two things differ from
// httputil.NewSingleHostReverseProxy's defaults. Its transport keeps up to
// 256 idle connections to the target (the default of 2 would make it dial
// under concurrent load, measuring the dial, not the hop). And it reads
// each request body (at most 4 MiB) into memory before forwarding it, as
// any gateway that inspects requests does: forwarding the inbound body
// itself races in net/http when the upstream starts a stream at once
// (writing the response headers closes the inbound body while the
// transport makes its last read of it, and the transport then drops the
// upstream connection mid-stream).
func NewProxy(target *url.URL) http.Handler {
	return withBufferedBody(newReverseProxy(target))
}

// newReverseProxy returns NewProxy's ReverseProxy, without the body's
// buffering.
func newReverseProxy(target *url.URL) *httputil.ReverseProxy {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = 256, 256
	return &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport: transport,
	}
}

// withBufferedBody reads each request's body into memory (at most 4 MiB)
// before h sees it.
func withBufferedBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, "cannot read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		h.ServeHTTP(w, r)
	})
}
