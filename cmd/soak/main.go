// Command soak runs tidygate under a steady load for a few minutes while the
// database repeatedly goes away and comes back, then prints requests by
// status, latency percentiles, and call records written against calls
// accepted. `make soak` runs it; docs/RELIABILITY.md shows a run.
//
// The database outages are made by an in-process toxiproxy between tidygate
// and PostgreSQL: stopping the proxy refuses and cuts every connection, as a
// stopped server does. Traffic stays on loopback.
//
// Usage:
//
//	soak -binary bin/tidygate [-admin-dsn postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
//	     [-duration 3m] [-rate 40] [-outage 10s] [-every 45s]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tidygate/tidygate/internal/freeaddr"
)

const devKey = "tg-dev-local-only-0000000000000000"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type options struct {
	binary, adminDSN string
	duration, outage time.Duration
	every            time.Duration
	rate             int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binary, "binary", "bin/tidygate", "the tidygate binary")
	fs.StringVar(&o.adminDSN, "admin-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "a server where soak may create and drop a database")
	fs.DurationVar(&o.duration, "duration", 3*time.Minute, "how long to send traffic")
	fs.IntVar(&o.rate, "rate", 40, "requests per second")
	fs.DurationVar(&o.outage, "outage", 10*time.Second, "how long each database outage lasts")
	fs.DurationVar(&o.every, "every", 45*time.Second, "time between the starts of outages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rate < 1 || o.duration <= 0 || o.outage <= 0 || o.every <= o.outage {
		return errors.New("need -rate ≥ 1, -duration > 0, and -every > -outage > 0")
	}

	dsn, drop, err := createDatabase(ctx, o.adminDSN)
	if err != nil {
		return err
	}
	defer drop()
	proxy, proxied, err := startProxy(dsn)
	if err != nil {
		return err
	}
	defer proxy.Stop()

	addrs, err := freeaddr.Loopback(1)
	if err != nil {
		return err
	}
	addr := addrs[0]
	journal, err := os.MkdirTemp("", "tidygate-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(journal)
	logFile, err := os.Create(filepath.Join(journal, "tidygate.log"))
	if err != nil {
		return err
	}
	svc := exec.Command(o.binary, "serve", "--dev-key")
	svc.Env = append(os.Environ(), "DATABASE_URL="+proxied, "HTTP_ADDR="+addr, "MLFLOW_JOURNAL_DIR="+journal,
		"ADMIN_ADDR=off", // the soak reads no metrics; no fixed port to collide on
		"MLFLOW_SCHEMA=create", "DB_POOL_ACQUIRE_TIMEOUT=1s", "DB_CONNECT_TIMEOUT=1s", "LOG_FORMAT=json")
	svc.Stdout, svc.Stderr = logFile, logFile
	if err := svc.Start(); err != nil {
		return err
	}
	defer func() { _ = svc.Process.Kill() }()
	base := "http://" + addr
	if err := waitReady(ctx, base, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %s at %d req/s for %s; database away %s every %s\n", o.binary, o.rate, o.duration, o.outage, o.every)

	res := load(ctx, base, o, proxy, stdout)

	fmt.Fprintln(stdout, "soak: stopping tidygate (SIGTERM) and waiting for the call log to flush")
	_ = svc.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- svc.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			return fmt.Errorf("tidygate exited with %w (log: %s)", err, logFile.Name())
		}
	case <-time.After(time.Minute):
		return errors.New("tidygate did not stop within a minute")
	}
	written, err := countTraces(ctx, dsn)
	if err != nil {
		return err
	}
	res.print(stdout, written)
	if written != res.status[200] {
		return fmt.Errorf("call records written (%d) differ from calls accepted (%d)", written, res.status[200])
	}
	return nil
}

// result collects the load's outcome.
type result struct {
	mu        sync.Mutex
	status    map[int]int
	latencies []time.Duration
	outages   int
}

func (r *result) add(code int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[code]++
	r.latencies = append(r.latencies, d)
}

func (r *result) print(w io.Writer, written int) {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(p*float64(len(r.latencies)-1))]
	}
	codes := make([]int, 0, len(r.status))
	for c := range r.status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	fmt.Fprintf(w, "\n| requests | outages | p50 | p99 | max |\n|---|---|---|---|---|\n| %d | %d | %s | %s | %s |\n\n",
		len(r.latencies), r.outages, pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintln(w, "| status | count |\n|---|---|")
	for _, c := range codes {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "transport error"
		}
		fmt.Fprintf(w, "| %s | %d |\n", label, r.status[c])
	}
	fmt.Fprintf(w, "\ncall records written: %d; calls accepted (200): %d\n", written, r.status[200])
}

// load sends requests at a steady rate and takes the database away on schedule.
func load(ctx context.Context, base string, o options, proxy *toxiproxy.Proxy, out io.Writer) *result {
	res := &result{status: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	client := &http.Client{Timeout: 30 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(o.rate))
	defer tick.Stop()
	began := time.Now()
	var wg sync.WaitGroup
	down := false
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			if down {
				_ = proxy.Start()
			}
			return res
		case <-tick.C:
		}
		phase := time.Since(began) % o.every
		switch {
		case !down && phase >= o.every-o.outage:
			proxy.Stop()
			down = true
			res.outages++
			fmt.Fprintf(out, "soak: %4.0fs database away\n", time.Since(began).Seconds())
		case down && phase < o.every-o.outage:
			if err := proxy.Start(); err == nil {
				down = false
				fmt.Fprintf(out, "soak: %4.0fs database back\n", time.Since(began).Seconds())
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions",
				strings.NewReader(`{"model":"mock-chat","messages":[{"role":"user","content":"soak"}]}`))
			req.Header.Set("Authorization", "Bearer "+devKey)
			req.Header.Set("X-Audit-Reason", "soak test")
			start := time.Now()
			resp, err := client.Do(req)
			code := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			res.add(code, time.Since(start))
		}()
	}
}

func createDatabase(ctx context.Context, admin string) (string, func(), error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "soak_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "the admin DSN"
}

func startProxy(dsn string) (*toxiproxy.Proxy, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, "", err
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "pg", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		return nil, "", err
	}
	u.Host = p.Listen
	return p, u.String(), nil
}

func waitReady(ctx context.Context, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("tidygate not ready within %s", within)
}

func countTraces(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM trace_info WHERE status = 'OK'").Scan(&n)
	return n, err
}
