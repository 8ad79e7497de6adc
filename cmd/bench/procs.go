package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// child is a process the harness started: the mock, the proxy or tidygate.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string   // where it serves, e.g. http://127.0.0.1:43210
	log  *os.File // its stdout and stderr, after the "listening on" line
	done chan struct{}
	err  error // set when done is closed
}

// startSelf runs this executable with args (`mock …` or `proxy …`) and
// waits for its "listening on URL" line.
func startSelf(logDir, name string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c, err := newChild(logDir, name, exec.Command(exe, args...))
	if err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- s
		_, _ = io.Copy(c.log, r)
	}()
	select {
	case s := <-line:
		u, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			_ = c.stop()
			return nil, fmt.Errorf("%s printed %q, not its address (log: %s)", name, s, c.log.Name())
		}
		c.url = u
		return c, nil
	case <-time.After(10 * time.Second):
		_ = c.stop()
		return nil, fmt.Errorf("%s did not say where it listens within 10 s (log: %s)", name, c.log.Name())
	}
}

func newChild(logDir, name string, cmd *exec.Cmd) (*child, error) {
	f, err := os.Create(fmt.Sprintf("%s/%s.log", logDir, name))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	return &child{name: name, cmd: cmd, log: f, done: make(chan struct{})}, nil
}

func (c *child) start() error {
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return nil
}

// stop sends SIGTERM, waits up to a minute for a clean exit, then kills.
// It returns the exit error, if the process did not exit cleanly.
func (c *child) stop() error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within a minute after SIGTERM; killed", c.name)
	}
}

// memory is a process's resident memory, in bytes, from /proc/PID/status.
type memory struct {
	peak int64 // VmHWM: the peak resident set size
	anon int64 // RssAnon now: heap, stacks, runtime
	file int64 // RssFile now: the binary's pages and mapped files
}

// memory reads the process's resident memory.
func (c *child) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	fields := map[string]*int64{"VmHWM:": &m.peak, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for line := range strings.SplitSeq(string(b), "\n") {
		for prefix, dst := range fields {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if err != nil {
					return memory{}, fmt.Errorf("/proc/PID/status: %s %w", prefix, err)
				}
				*dst = kb * 1024
			}
		}
	}
	if m.peak == 0 {
		return memory{}, errors.New("no VmHWM in /proc/PID/status")
	}
	return m, nil
}

// waitReady polls url until it answers 200, the process exits, or the
// deadline passes.
func (c *child) waitReady(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			exit := c.err
			if exit == nil {
				exit = errors.New("exit status 0")
			}
			return fmt.Errorf("%s exited before it was ready: %w (log: %s)", c.name, exit, c.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s within %s (log: %s)", c.name, url, within, c.log.Name())
		}
	}
}

// scratchDB is a database the harness created and drops when done.
type scratchDB struct {
	admin, dsn, name string
}

// createDB creates a database named bench_<purpose>_<random> on the server
// of adminDSN and returns it with a DSN that points at it.
func createDB(ctx context.Context, adminDSN, purpose string) (*scratchDB, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bench_" + purpose + "_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return nil, fmt.Errorf("connect with -admin-dsn: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &scratchDB{admin: adminDSN, dsn: u.String(), name: name}, nil
}

// drop removes the database, closing whatever is still connected to it.
func (d *scratchDB) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}
