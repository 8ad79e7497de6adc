package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the running service on HTTP_ADDR whether it is alive
// (/healthz) or, with --ready, ready (/readyz), and fails otherwise. It is
// the container image's HEALTHCHECK: a FROM scratch image has no curl.
func healthcheck(ctx context.Context, env environment, args []string, stdout io.Writer) error {
	fs := newFlags("healthcheck")
	ready := fs.Bool("ready", false, "check /readyz (every pool answers) instead of /healthz")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if _, err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := env()
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return usageError{fmt.Sprintf("HTTP_ADDR=%q: %v", cfg.HTTPAddr, err)}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // listening on every interface: ask over loopback
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", path, resp.StatusCode, body)
	}
	_, err = fmt.Fprintf(stdout, "%s", body)
	return err
}
