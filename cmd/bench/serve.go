package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// serveMock is `bench mock`: the mock OpenAI upstream as a process of its own.
func serveMock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench mock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	var opts bench.MockOptions
	fs.DurationVar(&opts.Latency, "latency", 0, "wait before answering (before a stream's first event)")
	fs.DurationVar(&opts.ChunkDelay, "chunk-delay", 0, "pause between a stream's events")
	fs.IntVar(&opts.Chunks, "chunks", 8, "content events per stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return listenAndServe(ctx, *addr, bench.NewMock(opts), stdout)
}

// serveProxy is `bench proxy`: a plain httputil.ReverseProxy, the floor a
// gateway's added latency is compared with. Two things differ from
// httputil.NewSingleHostReverseProxy's defaults. Its transport keeps up to
// 256 idle connections to the target (the default of 2 would make it dial
// under concurrent load, measuring the dial, not the hop). And it reads the
// request body into memory before forwarding it, as any gateway that
// inspects requests does: forwarding the inbound body itself races in
// net/http when the upstream starts a stream at once (writing the response
// headers closes the inbound body while the transport makes its last read
// of it, and the transport then drops the upstream connection mid-stream).
func serveProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	target := fs.String("target", "", "the upstream's base URL, e.g. http://127.0.0.1:9000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-target %q is not an absolute URL", *target)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = 256, 256
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: transport,
	}
	return listenAndServe(ctx, *addr, bufferBody(proxy), stdout)
}

// bufferBody reads each request's body (at most 4 MiB) before passing the
// request to next.
func bufferBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, "cannot read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// listenAndServe serves h on addr until ctx ends, after printing
// "listening on http://HOST:PORT" as its first line.
func listenAndServe(ctx context.Context, addr string, h http.Handler, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
