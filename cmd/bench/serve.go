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
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
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
	u, err := parseTarget(*target)
	if err != nil {
		return err
	}
	return listenAndServe(ctx, *addr, bench.NewProxy(u), stdout)
}

// serveFloor is `bench floor`: bench.FloorGateway, the floor's three parts
// composed in one process, as a process of its own. With -calllog-dsn, each
// call's record is tidygate's call log's in place of the bare append: a
// call record journaled (one fdatasync per group commit) and delivered in
// the background into MLflow's tables in that database, which it creates.
func serveFloor(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("bench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	target := fs.String("target", "", "the upstream's base URL, e.g. http://127.0.0.1:9000")
	dsn := fs.String("dsn", "", "PostgreSQL URL of the round trips")
	dir := fs.String("dir", "", "directory of the appends' file, or of the call log's journal (the journals' filesystem)")
	callLogDSN := fs.String("calllog-dsn", "", "record each call through tidygate's call log into MLflow's tables at this PostgreSQL URL, its journal in -dir, in place of the bare append")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := parseTarget(*target)
	if err != nil {
		return err
	}
	if *dsn == "" || *dir == "" {
		return errors.New("-dsn and -dir are required")
	}
	db, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("-dsn: %w", err)
	}
	defer db.Close()
	record, closeRecord, err := floorRecord(ctx, *dir, *callLogDSN)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeRecord()) }()
	return listenAndServe(ctx, *addr, bench.NewFloorGateway(u, db, record), stdout)
}

// floorRecord returns the composed floor's record: a bench.Appender in
// dir, or, with a callLogDSN, tidygate's call log recording a chat call
// like the latency section's for each call, its journal in dir and its
// writer delivering into MLflow's tables at callLogDSN, created on open.
// closeRecord delivers what is left and closes it.
func floorRecord(ctx context.Context, dir, callLogDSN string) (record func(context.Context) error, closeRecord func() error, err error) {
	if callLogDSN == "" {
		a, err := bench.NewAppender(dir)
		if err != nil {
			return nil, nil, err
		}
		return a.Append, a.Close, nil
	}
	pool, err := pgxpool.New(ctx, callLogDSN)
	if err != nil {
		return nil, nil, fmt.Errorf("-calllog-dsn: %w", err)
	}
	opts := callLogOptions(filepath.Join(dir, "floor-calllog"), 1<<20) // never full in a bench run
	opts.RequireDatabase = true
	log, err := mlflow.Open(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("the call log at -calllog-dsn: %w", err)
	}
	var calls atomic.Int64
	record = func(ctx context.Context) error { return log.Record(ctx, callRecord(calls.Add(1))) }
	closeRecord = func() error {
		defer pool.Close()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return log.Close(cctx)
	}
	return record, closeRecord, nil
}

// parseTarget parses the -target flag: an absolute URL.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("-target %q is not an absolute URL", s)
	}
	return u, nil
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
