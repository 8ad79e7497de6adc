package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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

// serveProxy is `bench proxy`: bench.NewProxy, the reverse-proxy floor, as
// a process of its own.
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
	return listenAndServe(ctx, *addr, bench.NewProxy(u), stdout)
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
