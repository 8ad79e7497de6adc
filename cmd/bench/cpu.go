package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/bench"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, which the
// kernel fixes at 100 on every architecture Go runs Linux on).
const userHZ = 100

// parseStatCPU returns the user + system CPU time of a /proc/PID/stat line
// (its 14th and 15th fields, in USER_HZ ticks). The command name, the 2nd
// field, is in parentheses and may itself hold spaces and parentheses, so
// the fields are counted from the last ')'.
func parseStatCPU(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat line %q has no command name", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat line %q is too short", line)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procCPU returns the CPU time process pid has used so far, all its threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// backendPIDs returns the process ids of the PostgreSQL backends serving
// database db (and, when app is not empty, only those whose
// application_name is app), asked on conn. The server must run on this
// host, in this process namespace, for /proc to see them.
func backendPIDs(ctx context.Context, conn *pgx.Conn, db, app string) ([]int, error) {
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity
WHERE datname = $1 AND backend_type = 'client backend' AND ($2 = '' OR application_name = $2) AND pid <> pg_backend_pid()`, db, app)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// cpuGroup is a named set of processes whose CPU time is added up.
type cpuGroup struct {
	name string
	pids func(context.Context) ([]int, error) // read at each snapshot: backends come and go
}

// fixedPIDs is a cpuGroup's pids for processes that stay.
func fixedPIDs(pids ...int) func(context.Context) ([]int, error) {
	return func(context.Context) ([]int, error) { return pids, nil }
}

// cpuSnapshot is the CPU time used so far by each process of each group.
type cpuSnapshot map[string]map[int]time.Duration

// snapshotCPU reads every group's processes' CPU time. A process that
// exits between the listing and the read is left out.
func snapshotCPU(ctx context.Context, groups []cpuGroup) (cpuSnapshot, error) {
	s := cpuSnapshot{}
	for _, g := range groups {
		pids, err := g.pids(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.name, err)
		}
		s[g.name] = map[int]time.Duration{}
		for _, pid := range pids {
			if d, err := procCPU(pid); err == nil {
				s[g.name][pid] = d
			}
		}
	}
	return s, nil
}

// cpuUsed returns each group's CPU time from before to after. A process
// that started in between counts from its start; one that exited in
// between counts as far as after saw it (see cpuMeter).
func cpuUsed(before, after cpuSnapshot) map[string]time.Duration {
	out := make(map[string]time.Duration, len(after))
	for g, pids := range after {
		for pid, d := range pids {
			out[g] += d - before[g][pid]
		}
	}
	return out
}

// merge adds to s what later saw: every process's latest CPU time, those
// that have exited since keeping the last one seen.
func (s cpuSnapshot) merge(later cpuSnapshot) {
	for g, pids := range later {
		if s[g] == nil {
			s[g] = map[int]time.Duration{}
		}
		for pid, d := range pids {
			s[g][pid] = max(s[g][pid], d)
		}
	}
}

// The process groups of the throughput loop.
const (
	cpuTidygate = "tidygate"
	cpuPostgres = "its PostgreSQL backends"
	cpuClient   = "the load generator (this harness)"
	cpuMock     = "the mock upstream"
)

// loopGroups are the processes that share the cores in a throughput run:
// tidygate, the backends of its database, this harness (the load
// generator) and the mock.
func loopGroups(admin *pgx.Conn, gw *gateway, mockPID int) []cpuGroup {
	return []cpuGroup{
		{cpuTidygate, fixedPIDs(gw.cmd.Process.Pid)},
		{cpuPostgres, func(ctx context.Context) ([]int, error) { return backendPIDs(ctx, admin, gw.db.name, "") }},
		{cpuClient, fixedPIDs(os.Getpid())},
		{cpuMock, fixedPIDs(mockPID)},
	}
}

// metricQueued is the call log's gauge of journal entries (records, and
// intents of calls that ran past the intent delay) not yet delivered, on
// tidygate's /metrics.
const metricQueued = "tidygate_calllog_records_queued"

// callLogPackage prefixes the names of the call log's functions in a
// profile: the journal append, the record's encoding, the writer.
const callLogPackage = "github.com/tidygate/tidygate/internal/adapters/mlflow."

// cpuMeter measures the CPU a throughput run costs the loop's processes.
// PostgreSQL closes a backend when pgx drops its connection, which it does
// when a query's context ends: at the end of a run, the calls cut off drop
// theirs. So the meter reads every process's CPU every cpuPoll while the
// run lasts, and counts a backend gone by the end as far as it last saw it.
type cpuMeter struct {
	gw     *gateway
	admin  *pgx.Conn
	groups []cpuGroup
	before cpuSnapshot
	traces int64

	mu      sync.Mutex  // held while reading the processes (one admin connection)
	seen    cpuSnapshot // under mu
	ended   cpuSnapshot // at the end of the load
	endedAt time.Time
	stopCh  chan struct{}
	polled  chan error
}

// cpuPoll is how often a cpuMeter reads the processes' CPU.
const cpuPoll = 25 * time.Millisecond

// cpuRun is what a cpuMeter measured over one throughput run.
type cpuRun struct {
	used    map[string]time.Duration // by group, while the load ran
	drained map[string]time.Duration // by group, after it, until the journal was empty
	elapsed time.Duration            // of the load
	drain   time.Duration            // from the end of the load until the journal was empty
	calls   int                      // answered 200 under the load
	written float64                  // traces delivered from the start of the load until the journal was empty
	queued  float64                  // journal entries (records and intents) waiting when the load ended
	share   float64                  // of tidygate's profile under the load in the call log's code (set by the caller)
}

// startCPUMeter snapshots the CPU time of the loop's processes and the
// call log's delivered records, and keeps reading the processes' CPU
// until stop.
func startCPUMeter(ctx context.Context, o options, gw *gateway, mockPID int) (*cpuMeter, error) {
	admin, err := pgx.Connect(ctx, o.adminDSN)
	if err != nil {
		return nil, err
	}
	m := &cpuMeter{gw: gw, admin: admin, groups: loopGroups(admin, gw, mockPID), stopCh: make(chan struct{}), polled: make(chan error, 1)}
	m.traces, _ = gw.traces(ctx) // none without a call log
	if m.before, err = snapshotCPU(ctx, m.groups); err != nil {
		return nil, errors.Join(err, admin.Close(ctx))
	}
	m.seen = cpuSnapshot{}
	m.seen.merge(m.before)
	go m.poll(ctx)
	return m, nil
}

func (m *cpuMeter) poll(ctx context.Context) {
	tick := time.NewTicker(cpuPoll)
	defer tick.Stop()
	for {
		select {
		case <-m.stopCh:
			m.polled <- nil
			return
		case <-tick.C:
			m.mu.Lock() // loadEnded reads too, on the same connection
			s, err := snapshotCPU(ctx, m.groups)
			if err == nil {
				m.seen.merge(s)
			}
			m.mu.Unlock()
			if err != nil {
				m.polled <- err
				return
			}
		}
	}
}

// loadEnded snapshots the processes' CPU at the end of the load t.
func (m *cpuMeter) loadEnded(ctx context.Context, t bench.Throughput) (cpuRun, error) {
	m.mu.Lock()
	now, err := snapshotCPU(ctx, m.groups)
	if err == nil {
		m.seen.merge(now)
		m.ended = m.seen.clone()
	}
	m.mu.Unlock()
	if err != nil {
		return cpuRun{}, err
	}
	m.endedAt = time.Now()
	return cpuRun{used: cpuUsed(m.before, m.ended), elapsed: t.Elapsed, calls: t.Succeeded,
		queued: m.gw.metrics(ctx, metricQueued)[metricQueued]}, nil
}

// drain waits until tidygate's journal is empty (at once without a call
// log), stops reading the processes' CPU, and adds to run what they used
// meanwhile: the delivery of what the load left behind.
func (m *cpuMeter) drain(ctx context.Context, run *cpuRun) error {
	deadline := time.Now().Add(10 * time.Minute)
	for m.gw.metrics(ctx, metricQueued)[metricQueued] > 0 {
		if time.Now().After(deadline) {
			return errors.New("tidygate's call log journal was not empty 10 minutes after the load")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(m.stopCh)
	err := <-m.polled
	last, serr := snapshotCPU(ctx, m.groups)
	if err := errors.Join(err, serr, m.admin.Close(ctx)); err != nil {
		return err
	}
	m.seen.merge(last)
	run.drained, run.drain = cpuUsed(m.ended, m.seen), time.Since(m.endedAt)
	traces, _ := m.gw.traces(ctx) // none without a call log
	run.written = float64(traces - m.traces)
	return nil
}

// clone returns a copy of s.
func (s cpuSnapshot) clone() cpuSnapshot {
	out := make(cpuSnapshot, len(s))
	for g, pids := range s {
		out[g] = maps.Clone(pids)
	}
	return out
}

// profileShareOf reads a CPU profile file and returns its share in the
// call log's code.
func profileShareOf(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return cpuShare(b, callLogPackage)
}

// loggingCost is what the CPU of a throughput run with logging on, and
// of one with it off, says about the call log.
type loggingCost struct {
	on, drained map[string]time.Duration // logging on: by group, under the load and after it
	off         map[string]time.Duration // logging off: by group, per call
	share       float64                  // of tidygate's profile under the load in the call log's code
	written     float64                  // traces delivered
	calls       float64                  // calls answered under the load, logging on
}

// newLoggingCost compares the CPU of the run with logging on and the run
// with it off.
func newLoggingCost(on, off cpuRun) loggingCost {
	return loggingCost{on: on.used, drained: on.drained, off: perCall(off.used, off.calls),
		share: on.share, written: on.written, calls: float64(on.calls)}
}

// perCall divides each group's CPU time by n calls.
func perCall(used map[string]time.Duration, n int) map[string]time.Duration {
	out := make(map[string]time.Duration, len(used))
	for g, d := range used {
		if n > 0 {
			out[g] = d / time.Duration(n)
		}
	}
	return out
}

// perRecord divides d by the traces delivered (by the calls when there
// are none).
func (c loggingCost) perRecord(d float64) time.Duration {
	n := c.written
	if n <= 0 {
		n = c.calls
	}
	if n <= 0 {
		return 0
	}
	return time.Duration(d / n)
}

// tidygateLog is tidygate's own CPU per record in the call log's code: its
// profile's share of its CPU under the load (the journal append, the
// record's encoding, the writer), and all of its CPU after the load, which
// only the writer used.
func (c loggingCost) tidygateLog() time.Duration {
	return c.perRecord(c.share*float64(c.on[cpuTidygate]) + float64(c.drained[cpuTidygate]))
}

// postgresLog is PostgreSQL's CPU per record delivered: what its backends
// used with logging on, under the load and after it, beyond what the same
// calls cost them with logging off (the ledger's work, the same either
// way).
func (c loggingCost) postgresLog() time.Duration {
	return c.perRecord(float64(c.on[cpuPostgres]+c.drained[cpuPostgres]) - float64(c.off[cpuPostgres])*c.calls)
}

// log is the call log's CPU per call: tidygate's own and PostgreSQL's.
func (c loggingCost) log() time.Duration { return max(0, c.tidygateLog()+c.postgresLog()) }

// offCPU is a call's CPU with logging off, summed over the groups named
// (all groups when none is named).
func (c loggingCost) offCPU(groups ...string) time.Duration {
	var sum time.Duration
	for g, d := range c.off {
		if len(groups) == 0 || slices.Contains(groups, g) {
			sum += d
		}
	}
	return sum
}

// cpuBound is the logging on/off throughput ratio a machine allows at best
// when everything shares its cores and they are the limit: a call costs
// off of CPU with logging off and off+log with it on, so the calls per
// second can at best keep the ratio off / (off + log).
func cpuBound(off, log time.Duration) float64 {
	if off+log <= 0 {
		return 0
	}
	return float64(off) / float64(off+log)
}

// reportLoggingCPU writes what the two throughput runs cost in CPU per
// call, the call log's part of it, and the bound that leaves on the
// logging on/off ratio; it returns the bound and its figures for the
// target's line.
func reportLoggingCPU(r *report, o options, on, off cpuRun) (string, callCPU) {
	c := newLoggingCost(on, off)
	onCall, drainCall := perCall(on.used, on.calls), perCall(on.drained, on.calls)
	var rows [][]string
	var onAll, drainAll, offAll time.Duration
	for _, g := range []string{cpuTidygate, cpuPostgres, cpuClient, cpuMock} {
		onAll, drainAll, offAll = onAll+onCall[g], drainAll+drainCall[g], offAll+c.off[g]
		rows = append(rows, []string{g, us(onCall[g]), us(drainCall[g]), us(c.off[g])})
	}
	rows = append(rows, []string{"**all**", us(onAll), us(drainAll), us(offAll)},
		[]string{"cores busy with these (CPU ÷ wall time ÷ cores)", busy(on.used, on.elapsed), busy(on.drained, on.drain), busy(off.used, off.elapsed)})
	r.para("CPU per call answered, user + system from /proc/PID/stat (%d Hz ticks, read every %s): tidygate, "+
		"the PostgreSQL backends of its database (from pg_stat_activity; the server's WAL writer and checkpointer are not counted), "+
		"this harness (the %d clients) and the mock; with logging on, under the load and then after it, while tidygate delivered "+
		"the %.0f journal entries (records, and intents of calls that ran past the intent delay) the load left waiting (%s).",
		userHZ, cpuPoll, o.concurrency, on.queued, on.drain.Round(100*time.Millisecond))
	r.table([]string{"process", "logging on, under the load", "logging on, delivering the rest", o.loggingOffEnv}, rows)
	tg, pg := c.tidygateLog(), c.postgresLog()
	brief := c.offCPU(cpuTidygate, cpuPostgres)
	boundAll, boundBrief := cpuBound(offAll, c.log()), cpuBound(brief, c.log())
	r.para("The call log's CPU per record (%.0f traces delivered, for %d calls answered under the load): tidygate's own %s "+
		"(%.1f %% of its CPU profile under the load has a frame in internal/adapters/mlflow: the journal append, the record's encoding, the writer; "+
		"and all of its CPU after the load) and PostgreSQL's %s (its backends' CPU under the load and after it, beyond what the same calls cost them with logging off): %s in all. "+
		"With logging off a call costs %s of CPU in tidygate and its backends, %s with the load generator and the mock. "+
		"On cores that all of them share, logging on/off can be at best off ÷ (off + log): %.2f× counting every process of the loop, "+
		"%.2f× counting tidygate and its backends alone.",
		on.written, on.calls, us(tg), 100*c.share, us(pg), us(c.log()), us(brief), us(offAll), boundAll, boundBrief)
	return fmt.Sprintf("CPU bound %.2f× (%.2f× for tidygate and PostgreSQL alone): a call costs %s of CPU with logging off, its record %s more (tidygate %s, PostgreSQL %s)",
		boundAll, boundBrief, us(offAll), us(c.log()), us(tg), us(pg)), callCPU{off: offAll, record: c.log()}
}

// callCPU is what a call costs in CPU, every process of the loop counted:
// with logging off, and its record's share with logging on.
type callCPU struct{ off, record time.Duration }

// reportThroughputBound writes what the throughput target leaves each call
// in CPU: at need calls per second, the machine's cores allow each at most
// cores ÷ need, against what a call costs with its record; the throughput
// target's line carries the comparison.
func reportThroughputBound(r *report, o options, need float64, cost callCPU) {
	cores := runtime.NumCPU()
	allowed := time.Duration(float64(cores) / need * float64(time.Second))
	whole := cost.off + cost.record
	r.para("The throughput target asks for %.0f calls per second with logging on. Sustained, %d cores give each call at most %s of CPU "+
		"(cores ÷ rate, every process of the loop counted, the database's included); a call costs %s with logging off and its record %s more: %s in all, %.2f× what that rate allows. "+
		"Over a %s run tidygate answers faster than its CPU sustains only because the writer falls behind and delivers after the load (the table above).",
		need, cores, us(allowed), us(cost.off), us(cost.record), us(whole), float64(whole)/float64(allowed), o.duration)
	r.annotate(throughputTargetName(o), fmt.Sprintf("%.0f req/s would leave a call %s of CPU on %d cores; it costs %s with its record (%s without)",
		need, us(allowed), cores, us(whole), us(cost.off)))
}

// busy is the fraction of the machine's cores the CPU used kept busy over d.
func busy(used map[string]time.Duration, d time.Duration) string {
	var sum time.Duration
	for _, u := range used {
		sum += u
	}
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(sum)/float64(d)/float64(runtime.NumCPU()))
}
