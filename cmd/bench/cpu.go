package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
// application_name is app). The server must run on this host, in this
// process namespace, for /proc to see them.
func backendPIDs(ctx context.Context, adminDSN, db, app string) ([]int, error) {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
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
// between is lost (the backends of a pool stay, so this is rare).
func cpuUsed(before, after cpuSnapshot) map[string]time.Duration {
	out := make(map[string]time.Duration, len(after))
	for g, pids := range after {
		for pid, d := range pids {
			out[g] += d - before[g][pid]
		}
	}
	return out
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
func loopGroups(o options, gw *gateway, mockPID int) []cpuGroup {
	return []cpuGroup{
		{cpuTidygate, fixedPIDs(gw.cmd.Process.Pid)},
		{cpuPostgres, func(ctx context.Context) ([]int, error) { return backendPIDs(ctx, o.adminDSN, gw.db.name, "") }},
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
type cpuMeter struct {
	gw     *gateway
	groups []cpuGroup
	before cpuSnapshot
	traces int64
}

// cpuRun is what a cpuMeter measured over one throughput run.
type cpuRun struct {
	used    map[string]time.Duration // by group
	elapsed time.Duration
	calls   int     // answered 200 in the run
	written float64 // records the writer delivered in the run as traces (0 with no call log)
	queued  float64 // journal entries (records and intents) waiting at the end
	share   float64 // of tidygate's profile in the call log's code (set by the caller)
}

// startCPUMeter snapshots the CPU time of the loop's processes and the
// call log's delivered records.
func startCPUMeter(ctx context.Context, o options, gw *gateway, mockPID int) (*cpuMeter, error) {
	m := &cpuMeter{gw: gw, groups: loopGroups(o, gw, mockPID)}
	m.traces, _ = gw.traces(ctx) // none without a call log
	var err error
	m.before, err = snapshotCPU(ctx, m.groups)
	return m, err
}

// stop snapshots again and returns what the run t cost.
func (m *cpuMeter) stop(ctx context.Context, t bench.Throughput) (cpuRun, error) {
	after, err := snapshotCPU(ctx, m.groups)
	if err != nil {
		return cpuRun{}, err
	}
	traces, _ := m.gw.traces(ctx) // none without a call log
	return cpuRun{used: cpuUsed(m.before, after), elapsed: t.Elapsed, calls: t.Succeeded,
		written: float64(traces - m.traces), queued: m.gw.metrics(ctx, metricQueued)[metricQueued]}, nil
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

// loggingCost is what a throughput run's CPU says about the call log.
type loggingCost struct {
	// CPU per call answered, by group, with logging on and off.
	on, off map[string]time.Duration
	// tidygateShare is the fraction of tidygate's CPU profile, logging on,
	// with a frame in the call log's package.
	tidygateShare float64
	// written is how many records the writer delivered during the logging-on
	// run, calls how many calls it answered.
	written, calls float64
}

// newLoggingCost compares the CPU of the run with logging on and the run
// with it off.
func newLoggingCost(on, off cpuRun) loggingCost {
	return loggingCost{on: perCall(on.used, on.calls), off: perCall(off.used, off.calls),
		tidygateShare: on.share, written: on.written, calls: float64(on.calls)}
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

// tidygateLog is tidygate's own CPU per call spent in the call log's code
// (the journal append, the record's encoding, the writer), by its profile.
func (c loggingCost) tidygateLog() time.Duration {
	return time.Duration(c.tidygateShare * float64(c.on[cpuTidygate]))
}

// postgresLog is PostgreSQL's CPU per record delivered: what its backends
// used with logging on beyond what the same calls cost them with logging
// off (the ledger's work, the same either way), divided by the records the
// writer delivered in the run (by the calls when it reports none).
func (c loggingCost) postgresLog() time.Duration {
	extra := float64(c.on[cpuPostgres]-c.off[cpuPostgres]) * c.calls
	n := c.written
	if n <= 0 {
		n = c.calls
	}
	if n <= 0 {
		return 0
	}
	return time.Duration(extra / n)
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
func reportLoggingCPU(r *report, o options, on, off cpuRun) string {
	c := newLoggingCost(on, off)
	groups := []string{cpuTidygate, cpuPostgres, cpuClient, cpuMock}
	var rows [][]string
	var onAll, offAll time.Duration
	for _, g := range groups {
		onAll, offAll = onAll+c.on[g], offAll+c.off[g]
		rows = append(rows, []string{g, us(c.on[g]), us(c.off[g]), us(c.on[g] - c.off[g])})
	}
	rows = append(rows, []string{"**all**", us(onAll), us(offAll), us(onAll - offAll)},
		[]string{"cores busy with these (CPU ÷ wall time ÷ cores)", busy(on, o), busy(off, o), "–"})
	r.para("CPU per call answered, user + system from /proc/PID/stat (%d Hz ticks) over each measured run: tidygate, "+
		"the PostgreSQL backends of its database (from pg_stat_activity; the server's WAL writer and checkpointer are not counted), "+
		"this harness (the %d clients) and the mock.", userHZ, o.concurrency)
	r.table([]string{"process", "logging on", o.loggingOffEnv, "on − off"}, rows)
	tg, pg := c.tidygateLog(), c.postgresLog()
	brief := c.offCPU(cpuTidygate, cpuPostgres)
	boundAll, boundBrief := cpuBound(offAll, c.log()), cpuBound(brief, c.log())
	r.para("The call log's CPU per call: tidygate's own %s (%.1f %% of its CPU profile with logging on has a frame in internal/adapters/mlflow: "+
		"the journal append, the record's encoding, the writer), and PostgreSQL's %s per record delivered "+
		"(its backends' CPU with logging on beyond what the same calls cost them with logging off, over the %.0f records the writer delivered "+
		"as traces during the run; %d calls were answered, %.0f journal entries, records and intents, were waiting at its end): %s in all. "+
		"With logging off a call costs %s of CPU in tidygate and its backends, %s with the load generator and the mock. "+
		"On cores that all of them share, logging on/off can be at best off ÷ (off + log): %.2f× counting every process of the loop, "+
		"%.2f× counting tidygate and its backends alone.",
		us(tg), 100*c.tidygateShare, us(pg), on.written, on.calls, on.queued, us(c.log()), us(brief), us(offAll), boundAll, boundBrief)
	return fmt.Sprintf("CPU bound %.2f× (%.2f× for tidygate and PostgreSQL alone): a call costs %s of CPU with logging off, the call log %s more (tidygate %s, PostgreSQL %s)",
		boundAll, boundBrief, us(offAll), us(c.log()), us(tg), us(pg))
}

// busy is the fraction of the machine's cores a run's processes kept busy.
func busy(run cpuRun, o options) string {
	var sum time.Duration
	for _, d := range run.used {
		sum += d
	}
	if run.elapsed <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(sum)/float64(run.elapsed)/float64(runtime.NumCPU()))
}
