// Package mlflow is tidygate's call log: every call becomes an MLflow trace
// (and, when asked, an MLflow run) written straight into the PostgreSQL
// tables of an MLflow tracking server, shaped like the traces MLflow's own AI
// gateway writes for usage tracking, so that MLflow's UI shows tidygate's
// traffic.
//
// Record appends the call to a local journal (append-only segment files,
// one fdatasync per group commit) and returns once it is on disk. One
// writer goroutine moves journaled records to PostgreSQL in batches, one
// transaction per batch, and marks them delivered in the journal only after
// the commit. Every row is keyed on MLflow's primary keys and derived
// deterministically from the call's request id, so a batch that is
// delivered twice (after a crash between commit and mark) changes nothing.
//
// While PostgreSQL is down, records accumulate in the journal and the writer
// retries with capped backoff; they survive restarts. A record PostgreSQL
// refuses for its content (a data exception or integrity violation that it
// raises even when written alone) is moved to the journal's quarantine file
// (quarantine.jsonl, one JSON object a line) and counted, so that it cannot
// block the records behind it.
package mlflow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.CallLog = (*CallLog)(nil)

// Conns hands out connections to the MLflow database. A *pgxpool.Pool
// satisfies it, and so does tidygate's infra.Pool, which applies the acquire
// deadline and reports a failure as a domain.KindUnavailable error.
type Conns interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// SchemaMode says whether tidygate may create the MLflow tables it writes.
type SchemaMode string

// The schema modes.
const (
	// SchemaVerify checks that the tables and columns tidygate writes exist
	// and never changes the schema: in production MLflow owns it.
	SchemaVerify SchemaMode = "verify"
	// SchemaCreate creates the missing tables first, for development and tests.
	SchemaCreate SchemaMode = "create"
)

// LogMode says what each call becomes in MLflow.
type LogMode string

// The log modes.
const (
	LogTraces LogMode = "traces" // one trace per call, as MLflow's AI gateway writes them
	LogRuns   LogMode = "runs"   // one run per call, with params and metrics
	LogBoth   LogMode = "both"   // a trace and a run per call, the trace linked to the run
	// LogOff records nothing: there is no journal, no writer and no audit
	// trail. It exists to measure what the call log costs (make bench) and
	// for throwaway development; Open warns when it is chosen, and
	// tidygate's configuration allows it in the local profile only.
	LogOff LogMode = "off"
)

func (m LogMode) traces() bool { return m == LogTraces || m == LogBoth }
func (m LogMode) runs() bool   { return m == LogRuns || m == LogBoth }

// ContentMode says how much prompt and response text the call log keeps,
// in the journal as well as in MLflow: domain.ContentPolicy, the one rule
// that stored responses follow too.
type ContentMode = domain.ContentPolicy

// The content modes.
const (
	// ContentFull keeps the messages, inputs and output in the spans, within
	// MLflow's size limits.
	ContentFull = domain.ContentFull
	// ContentPreview keeps only the request and response previews (at most
	// 1000 characters each); spans carry the request's parameters only.
	ContentPreview = domain.ContentPreview
	// ContentNone keeps no prompt or response text anywhere.
	ContentNone = domain.ContentNone
)

// Options configure a CallLog; tidygate fills them from its MLFLOW_* settings
// (cmd/app), so that this package reads no configuration of its own.
type Options struct {
	Schema           SchemaMode
	LogMode          LogMode
	Content          ContentMode
	ExperimentPrefix string // each model's calls go to the experiment ExperimentPrefix+model, e.g. "tidygate/mock-chat"
	// GatewayEndpointID, when set, is written on every trace as
	// mlflow.gateway.endpointId. MLflow's own AI gateway sums the cost of
	// every trace carrying that key into its budgets, so only an operator
	// who wants tidygate's spend in those budgets sets it.
	GatewayEndpointID string

	JournalDir        string // the directory of the journal file; created if absent
	JournalMaxRecords int    // from this many undelivered records on, the journal counts as full
	RefuseWhenFull    bool   // Admit refuses calls while the journal is full (else it only logs)

	BatchSize     int           // the most records written to PostgreSQL in one transaction
	FlushInterval time.Duration // how often the writer delivers what waits in the journal (sooner from wakeAt records on)

	// RequireDatabase makes Open fail when the database cannot be reached;
	// otherwise Open succeeds, records are journaled and the writer checks
	// the schema once the database answers.
	RequireDatabase bool

	Logger     *slog.Logger          // nil discards the log
	Registerer prometheus.Registerer // nil leaves the metrics unregistered
}

func (o Options) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if o.Schema != SchemaVerify && o.Schema != SchemaCreate {
		add("schema mode %q (MLFLOW_SCHEMA) is not verify or create", o.Schema)
	}
	if o.LogMode != LogTraces && o.LogMode != LogRuns && o.LogMode != LogBoth && o.LogMode != LogOff {
		add("log mode %q (MLFLOW_LOG_MODE) is not traces, runs, both or off", o.LogMode)
	}
	if o.Content != ContentFull && o.Content != ContentPreview && o.Content != ContentNone {
		add("content mode %q (MLFLOW_LOG_CONTENT) is not full, preview or none", o.Content)
	}
	if o.JournalDir == "" {
		add("the journal directory (MLFLOW_JOURNAL_DIR) is not set")
	}
	if o.JournalMaxRecords < 1 {
		add("the journal's maximum of records (MLFLOW_JOURNAL_MAX_RECORDS) must be positive, not %d", o.JournalMaxRecords)
	}
	if o.BatchSize < 1 {
		add("the writer's batch size (MLFLOW_WRITER_BATCH_SIZE) must be positive, not %d", o.BatchSize)
	}
	if o.FlushInterval <= 0 {
		add("the writer's flush interval (MLFLOW_WRITER_FLUSH_INTERVAL) must be positive, not %s", o.FlushInterval)
	}
	if len(problems) > 0 {
		return fmt.Errorf("mlflow call log options: %s", strings.Join(problems, "; "))
	}
	return nil
}

// CallLog is the durable audit trail that records calls in MLflow's tables.
// It implements ports.CallLog; Close must be called to drain it.
type CallLog struct {
	opts    Options
	log     *slog.Logger
	journal *journal // nil with LogOff, as are writer, metrics, intents and owed
	writer  *writer
	intents *intents
	owed    *owed
	metrics *metrics
	holder  domain.Holder // zero with LogOff

	mu     sync.RWMutex // held for reading by Record, for writing by Close
	closed bool
	full   atomic.Bool // the last Admit saw a full journal; logs only the transitions

	// held counts the slots Admit handed out and not yet released: calls
	// admitted whose records are not written yet. They count against
	// JournalMaxRecords, so that a burst cannot overrun the limit.
	held atomic.Int64
	// broken is set when a journal write fails and cleared by the next
	// write that succeeds; while it is set, Admit refuses calls, because
	// their records could not be written.
	broken  atomic.Bool
	probing sync.Mutex // one probe write at a time while broken
}

// Holder names this call log and this run of it on the reservations the
// gateway takes (domain.Holder): the journal's identity, kept in its
// directory (journal.id), and a run made at each Open, so that the next
// run on the journal finds the holds this one leaves. With LogOff it is
// the zero Holder: no journal can account for a hold after a crash.
func (c *CallLog) Holder() domain.Holder { return c.holder }

// Open opens (or creates) the journal in opts.JournalDir, checks or creates
// the MLflow schema through conns, and starts the writer, which first
// delivers whatever an earlier process left in the journal. When the
// database cannot be reached, Open still succeeds (unless
// opts.RequireDatabase) and the writer checks the schema once it can; a
// schema that lacks a column tidygate needs is an error either way.
func Open(ctx context.Context, conns Conns, opts Options) (*CallLog, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mlflow call log")
	if opts.LogMode == LogOff {
		log.Warn("MLFLOW_LOG_MODE=off: calls are not recorded anywhere; the audit trail is off")
		return &CallLog{opts: opts, log: log}, nil
	}
	j, err := openJournal(opts.JournalDir)
	if err != nil {
		return nil, err
	}
	if n := j.len(); n > 0 {
		log.Info("journal holds undelivered records from an earlier run; delivering them", "records", n, "journal", j.path)
	}
	if n, err := j.quarantined(); err == nil && n > 0 {
		log.Error("journal holds records set aside because PostgreSQL refused them; inspect "+quarantineFile, "records", n, "journal", j.path)
	}
	reportRecovery(log, j)
	id, err := journalIdentity(j.dir)
	if err != nil {
		return nil, errors.Join(err, j.close())
	}
	open := newIntents()
	if err := open.scan(j); err != nil {
		return nil, errors.Join(fmt.Errorf("call log journal %s: %w", j.path, err), j.close())
	}
	if n := len(open.unfinished()); n > 0 {
		log.Warn("journal holds the intents of calls an earlier run did not finish; they are recorded as interrupted by a crash once the gateway settles them",
			"calls", n, "journal", j.path)
	}
	debts := newOwed()
	if err := debts.scan(j); err != nil {
		return nil, errors.Join(fmt.Errorf("call log journal %s: %w", j.path, err), j.close())
	}
	if n := len(debts.unacknowledged()); n > 0 {
		log.Warn("journal holds calls an earlier run answered whose settlement the ledger may not have applied; the gateway settles them at their recorded cost",
			"calls", n, "journal", j.path)
	}
	st := newStore(conns, opts, log)
	if err := st.prepare(ctx); err != nil {
		if domain.KindOf(err) != domain.KindUnavailable || opts.RequireDatabase {
			return nil, errors.Join(err, j.close())
		}
		log.Warn("MLflow database unavailable at start; journaling records until it answers", "error", err)
	}
	m := newMetrics(j)
	if opts.Registerer != nil {
		if err := m.register(opts.Registerer); err != nil {
			return nil, errors.Join(fmt.Errorf("mlflow call log metrics: %w", err), j.close())
		}
	}
	c := &CallLog{opts: opts, log: log, journal: j, metrics: m, intents: open, owed: debts,
		holder: domain.Holder{Log: id, Run: rand.Text()}}
	c.writer = startWriter(st, j, open, m, opts, log)
	return c, nil
}

// Admit takes a slot for one call's record when the journal can take it,
// and returns the function that gives the slot back. Calls admitted and not
// yet released count as records: while the journal's records plus those
// calls reach JournalMaxRecords, Admit returns a domain.KindUnavailable
// error (call_log_full) with RefuseWhenFull, and otherwise logs the
// overflow and admits the call. After a journal write failed, Admit first
// probes the journal with a small write and returns call_log_unwritable
// until one succeeds: a call whose record cannot be written must not reach
// a provider.
func (c *CallLog) Admit() (func(), error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if c.journal == nil {
		return func() {}, nil
	}
	for {
		held := c.held.Load()
		n := c.journal.len() + int(held)
		if n >= c.opts.JournalMaxRecords {
			if err := c.overflow(n); err != nil {
				return nil, err
			}
			c.held.Add(1)
			return c.releaser(), nil
		}
		if c.held.CompareAndSwap(held, held+1) {
			if c.full.CompareAndSwap(true, false) {
				c.log.Info("call log journal has room again", "records", c.journal.len(), "max", c.opts.JournalMaxRecords)
			}
			return c.releaser(), nil
		}
	}
}

// Ready returns nil when Admit would admit a call now, else why not: the
// call log is closed, its journal cannot be written, or it is full (with
// RefuseWhenFull). Like Admit, it probes a journal whose last write failed,
// so that readiness checks notice when the disk has room again.
func (c *CallLog) Ready() error {
	if err := c.usable(); err != nil {
		return err
	}
	if c.journal == nil || !c.opts.RefuseWhenFull {
		return nil
	}
	if n := c.journal.len() + int(c.held.Load()); n >= c.opts.JournalMaxRecords {
		return errFull(n)
	}
	return nil
}

// usable refuses calls once the log is closed, and while the journal cannot
// be written: it probes the journal then, one probe at a time.
func (c *CallLog) usable() error {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return errClosed()
	}
	if c.journal == nil || !c.broken.Load() {
		return nil
	}
	if c.probing.TryLock() {
		err := c.journal.probe()
		c.probing.Unlock()
		c.wrote(err)
	}
	if c.broken.Load() {
		return &domain.Error{Kind: domain.KindUnavailable, Code: "call_log_unwritable", RetryAfter: time.Second,
			Message: "the call log journal cannot be written (its last write failed); refusing new calls until it can"}
	}
	return nil
}

// wrote notes the outcome of a journal write, and logs when the journal
// stops or starts taking writes.
func (c *CallLog) wrote(err error) {
	if err == nil {
		if c.broken.CompareAndSwap(true, false) {
			c.log.Info("call log journal takes writes again; admitting calls", "journal", c.journal.path)
		}
		return
	}
	if c.broken.CompareAndSwap(false, true) {
		c.log.Error("call log journal write failed; refusing new calls until a write succeeds", "error", err, "journal", c.journal.path)
	}
}

// overflow logs that the journal is full and returns the refusal, or nil
// when the call log admits calls anyway.
func (c *CallLog) overflow(n int) error {
	if c.full.CompareAndSwap(false, true) {
		c.log.Error("call log journal is full: PostgreSQL is not keeping up or is down",
			"records", n, "max", c.opts.JournalMaxRecords, "refusing_calls", c.opts.RefuseWhenFull, "journal", c.journal.path)
	}
	if !c.opts.RefuseWhenFull {
		return nil
	}
	return errFull(n)
}

// releaser returns the function that gives back one slot, once.
func (c *CallLog) releaser() func() {
	var once sync.Once
	return func() { once.Do(func() { c.held.Add(-1) }) }
}

func errFull(n int) error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "call_log_full", RetryAfter: time.Second,
		Message: fmt.Sprintf("call log journal is full (%d records and admitted calls); refusing new calls", n)}
}

// Record appends r to the journal and returns nil once the journal has been
// committed to disk; the writer delivers it to MLflow later, and removes
// the call's intent with it. Text the
// content mode excludes is dropped before the record reaches the disk. When
// ctx ends before the commit, Record returns a domain.KindUnavailable error
// without waiting further, but the append is not abandoned: the record is
// kept if the commit succeeds, since the call it describes did happen.
func (c *CallLog) Record(ctx context.Context, r domain.CallRecord) error {
	if r.RequestID == "" {
		return domain.Errorf(domain.KindInternal, "call record has no request id")
	}
	if c.journal == nil {
		return nil
	}
	value, err := encodeRecord(r, c.opts.Content)
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "call log cannot encode record "+r.RequestID)
	}
	err = c.commit(ctx, func() error { return c.append(value) })
	if err == nil {
		c.intents.remove(r.RequestID)
	}
	return err
}

// RecordOwing is Record for a call whose settlement follows: owed is
// journaled in the record, marked owed in the same commit (one fdatasync,
// as Record's), and the journal keeps the record, delivered or not, until
// Acknowledge names its reservation and a later commit has carried that.
func (c *CallLog) RecordOwing(ctx context.Context, r domain.CallRecord, owed ports.Settlement) error {
	if r.RequestID == "" || owed.ReservationID == "" {
		return domain.Errorf(domain.KindInternal, "call record or its settlement has no request id")
	}
	if c.journal == nil {
		return nil
	}
	value, err := encodeOwing(r, c.opts.Content, owed)
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "call log cannot encode record "+r.RequestID)
	}
	err = c.commit(ctx, func() error {
		seq, err := c.appendKind(value, true)
		if err == nil {
			c.owed.add(owed.ReservationID, seq)
		}
		return err
	})
	if err == nil {
		c.intents.remove(r.RequestID)
	}
	return err
}

// Acknowledge notes that the ledger applied the settlements of the
// reservations ids. The journal writes it with its next commit, without a
// commit of its own: a record's, an intent's, the writer's, or at the
// latest the writer's next tick (FlushInterval) or Close.
func (c *CallLog) Acknowledge(ids []string) {
	if c.journal == nil {
		return
	}
	c.journal.settle(c.owed.take(ids))
}

// Owed returns the settlements the journal held at Open in records whose
// settlement no acknowledgement named, less those acknowledged since.
func (c *CallLog) Owed(context.Context) ([]ports.Settlement, error) {
	if c.journal == nil {
		return nil, nil
	}
	return c.owed.unacknowledged(), nil
}

// Intend appends the call's intent to the journal and returns nil once it
// is on disk, as Record does. The writer never delivers an intent: the
// call's record supersedes it, and one that a stopped process left without
// a record is what Unfinished returns at the next start.
func (c *CallLog) Intend(ctx context.Context, i domain.CallIntent) error {
	if i.RequestID == "" {
		return domain.Errorf(domain.KindInternal, "call intent has no request id")
	}
	if c.journal == nil {
		return nil
	}
	value, err := encodeIntent(i)
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "call log cannot encode the intent of "+i.RequestID)
	}
	c.intents.add(i.RequestID)
	return c.commit(ctx, func() error { return c.append(value) })
}

// Unfinished returns the intents the journal held at Open without a
// record, less those recorded since.
func (c *CallLog) Unfinished(context.Context) ([]domain.CallIntent, error) {
	if c.journal == nil {
		return nil, nil
	}
	return c.intents.unfinished(), nil
}

// commit runs write, an append to the journal, returning once it is on
// disk or ctx ends (the append then goes on).
func (c *CallLog) commit(ctx context.Context, write func() error) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed()
	}
	committed := make(chan error, 1)
	go func() {
		defer c.mu.RUnlock() // Close waits for appends in flight
		committed <- write()
	}()
	select {
	case err := <-committed:
		return err
	case <-ctx.Done():
		return domain.Wrap(domain.KindUnavailable, ctx.Err(), "call log journal did not commit in time")
	}
}

func (c *CallLog) append(value []byte) error {
	_, err := c.appendKind(value, false)
	return err
}

// appendKind appends value as a record, owed when owes is set, and
// returns its sequence number.
func (c *CallLog) appendKind(value []byte, owes bool) (uint64, error) {
	seq, err := c.journal.appendKind(value, owes)
	c.wrote(err)
	if err != nil {
		return 0, domain.Wrap(domain.KindUnavailable, err, "call log journal write failed")
	}
	c.metrics.journaled.Inc()
	if c.journal.len() >= c.opts.wakeAt() {
		c.writer.wake()
	}
	return seq, nil
}

// Flush blocks until the journal is empty, every record in it written to
// PostgreSQL, or ctx ends. It returns ctx's error in that case, and an
// error when the call log is closed.
func (c *CallLog) Flush(ctx context.Context) error {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return errClosed()
	}
	if c.writer == nil {
		return nil
	}
	return c.writer.flush(ctx)
}

// Close stops accepting records, delivers what the journal holds until
// ctx's deadline, stops the writer and closes the journal; what is left
// stays on disk for the next start, and the log says how much. The
// connections given to Open stay open: they are the caller's. Give ctx a
// deadline: while the database is down, Close waits for it until ctx ends.
func (c *CallLog) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.journal == nil {
		return nil
	}

	c.writer.stop(ctx)
	left := c.journal.len()
	err := errors.Join(c.journal.flushSettled(), c.journal.close())
	if left > 0 {
		c.log.Warn("call log closed with undelivered records; they stay in the journal for the next start",
			"records", left, "journal", c.journal.path)
	} else {
		c.log.Info("call log closed; every record delivered")
	}
	return err
}

func errClosed() error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "call_log_closed", Message: "call log is closed"}
}
