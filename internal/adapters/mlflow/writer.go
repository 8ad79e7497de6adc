package mlflow

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// attemptTimeout bounds one batch's write, so that a connection that
	// hangs costs a retry, not the writer.
	attemptTimeout = 30 * time.Second
	// maxBatchBytes bounds a batch's journaled size, so that a batch of
	// large prompts stays far below PostgreSQL's 1 GB limit on a parameter.
	maxBatchBytes = 32 << 20
	// wakeBatches is how many whole batches must wait in the journal
	// before a record wakes the writer ahead of its tick (Options.wakeAt).
	// Below that, the tick delivers what waits once per FlushInterval,
	// back to back: one burst of delivery per interval (a second by
	// default), not one each time a batch fills, which keeps the writer's
	// commits off the disk and cores the calls wait for most of the time
	// (measured in docs/BENCHMARKS.md, "The eleventh round").
	wakeBatches = 10
)

// wakeAt is how many records waiting in the journal wake the writer ahead
// of its tick: wakeBatches whole batches, or half the journal's capacity
// if that comes first, so that a small journal does not fill up while the
// writer waits for its tick.
func (o Options) wakeAt() int {
	return max(1, min(wakeBatches*o.BatchSize, o.JournalMaxRecords/2))
}

var errStopping = errors.New("call log is closing")

// writer is the one goroutine that moves records from the journal to
// PostgreSQL: every FlushInterval, and when a record finds Options.wakeAt
// records waiting, what is waiting then (see pass), one transaction per
// batch of at most BatchSize, deleted from the journal after the commit.
// A failed batch stays in the journal and is retried with capped
// exponential backoff.
type writer struct {
	store     *store
	journal   *journal
	intents   *intents // the calls whose intents the writer skips
	metrics   *metrics
	log       *slog.Logger
	batchSize int
	interval  time.Duration
	backoff   time.Duration // the last wait after a failure; zero after a success

	ready    chan struct{}      // Options.wakeAt records are waiting (capacity 1)
	flushes  chan flushRequest  // Flush calls
	stopping chan struct{}      // closed by stop
	final    context.Context    // stop's context, set before stopping is closed
	cancel   context.CancelFunc // cancels the writer's own context
	done     chan struct{}      // closed when the goroutine has returned
}

type flushRequest struct {
	ctx   context.Context
	reply chan error
}

func startWriter(st *store, j *journal, open *intents, m *metrics, opts Options, log *slog.Logger) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{
		store: st, journal: j, intents: open, metrics: m, log: log,
		batchSize: opts.BatchSize, interval: opts.FlushInterval,
		ready: make(chan struct{}, 1), flushes: make(chan flushRequest), stopping: make(chan struct{}),
		cancel: cancel, done: make(chan struct{}),
	}
	go w.run(ctx)
	return w
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	_ = w.drain(ctx, w.stopping, passAll) // what an earlier process left behind
	for {
		select {
		case <-w.stopping:
			_ = w.drain(w.final, nil, passAll)
			return
		case req := <-w.flushes:
			req.reply <- w.drain(req.ctx, w.stopping, passAll)
		case <-w.ready:
			_ = w.drain(ctx, w.stopping, passDue)
		case <-tick.C:
			_ = w.drain(ctx, w.stopping, passDue)
			_ = w.journal.flushSettled() // on failure, the next commit carries them
		}
	}
}

// pass is how much of the journal one drain delivers.
type pass int

const (
	// passDue delivers as many batches as the records waiting when it
	// began fill, back to back: what the tick and a wake-up do, so that
	// no record waits in the journal much longer than FlushInterval. The
	// records that arrive meanwhile wait for the next tick or wake-up,
	// instead of each going out in a small transaction of its own: under
	// a steady flow, chasing the journal to empty wrote a batch of a few
	// records every few milliseconds, each with its commit and its
	// delivery mark on the disk the calls' records wait for.
	passDue pass = iota
	// passAll delivers until the journal is empty: at start, for Flush,
	// and when stopping.
	passAll
)

// wake tells the writer that records are waiting (Options.wakeAt).
func (w *writer) wake() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// flush waits until the journal is empty, or ctx ends, or the writer stops.
func (w *writer) flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, reply: make(chan error, 1)}
	select {
	case w.flushes <- req:
	case <-w.stopping:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop makes the writer deliver what it can until ctx ends, and waits for it
// to return. A batch in flight when ctx ends is cancelled (and stays in the
// journal).
func (w *writer) stop(ctx context.Context) {
	w.final = ctx
	close(w.stopping)
	cancelOnDeadline := context.AfterFunc(ctx, w.cancel)
	<-w.done
	cancelOnDeadline()
	w.cancel()
}

// drain delivers batches until the pass p is done or the journal is empty
// (nil), ctx ends (its error) or interrupt is closed (errStopping).
func (w *writer) drain(ctx context.Context, interrupt <-chan struct{}, p pass) error {
	due := (w.journal.len() + w.batchSize - 1) / w.batchSize // passDue's batches
	for delivered := 0; ; {
		select {
		case <-interrupt:
			return errStopping
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == passDue && delivered >= due {
			return nil
		}
		// Intents of calls in flight are read past, not delivered.
		entries, err := w.journal.read(w.batchSize+w.intents.count(), maxBatchBytes)
		if err == nil && len(entries) == 0 {
			return nil
		}
		moved := false
		if err == nil {
			moved, err = w.deliver(ctx, entries)
		}
		if err == nil && !moved {
			return nil // only intents of calls in flight are left
		}
		if err == nil {
			w.backoff = 0
			delivered++
			continue
		}
		w.metrics.retries.Inc()
		w.store.reset()
		w.backoff = min(max(2*w.backoff, minBackoff), maxBackoff)
		wait := w.backoff + rand.N(w.backoff/4)
		w.log.Warn("writing calls to MLflow failed; they stay in the journal and are retried",
			"records", len(entries), "queued", w.journal.len(), "retry_in", wait, "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-interrupt:
			timer.Stop()
			return errStopping
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

// batchItem is one distinct call of a batch and every journal entry that
// holds it (a record journaled twice is written once).
type batchItem struct {
	call    call
	entries []entry
}

// deliver writes one batch and removes it from the journal, each call's
// intent with its record; it reports whether it moved anything. An intent
// whose record is not in the batch stays in the journal, undelivered. When
// PostgreSQL refuses the batch for its data, it writes the calls one by
// one and sets aside, in the journal's quarantine file, those it refuses
// alone, so that one bad record cannot block the trail behind it.
func (w *writer) deliver(ctx context.Context, entries []entry) (bool, error) {
	var items []batchItem
	index := map[string]int{}
	pending := map[string][]entry{} // intents, by request id
	moved := false
	for _, e := range entries {
		if e.damaged != nil {
			if err := w.setAside(e, e.damaged); err != nil {
				return moved, err
			}
			moved = true
			continue
		}
		c, err := decodeRecord(e.value)
		if err != nil {
			if err := w.setAside(e, err); err != nil {
				return moved, err
			}
			moved = true
			continue
		}
		if c.intent != nil {
			pending[c.rec.RequestID] = append(pending[c.rec.RequestID], e)
			continue
		}
		if i, ok := index[c.rec.RequestID]; ok {
			items[i].entries = append(items[i].entries, e)
			continue
		}
		index[c.rec.RequestID] = len(items)
		items = append(items, batchItem{call: c, entries: []entry{e}})
	}
	for id, es := range pending {
		if i, ok := index[id]; ok {
			items[i].entries = append(items[i].entries, es...)
		}
	}
	if len(items) == 0 {
		return moved, nil
	}
	err := w.write(ctx, items)
	if err == nil || !refused(err) {
		return err == nil, err
	}
	w.log.Warn("MLflow refused a batch of calls; writing them one by one to find the record at fault", "records", len(items), "error", err)
	w.store.reset()
	for _, it := range items {
		err := w.write(ctx, []batchItem{it})
		if err == nil {
			continue
		}
		if !refused(err) {
			return true, err
		}
		for _, e := range it.entries {
			if qerr := w.setAside(e, err); qerr != nil {
				return true, qerr
			}
		}
	}
	return true, nil
}

// write writes the items in one transaction and removes their entries from
// the journal.
func (w *writer) write(ctx context.Context, items []batchItem) error {
	calls := make([]call, len(items))
	var entries []entry
	for i, it := range items {
		calls[i] = it.call
		entries = append(entries, it.entries...)
	}
	attemptCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := w.store.write(attemptCtx, calls); err != nil {
		return err
	}
	if err := w.journal.remove(entries); err != nil {
		return err
	}
	w.metrics.written.Add(float64(len(entries)))
	return nil
}

// setAside moves an entry PostgreSQL will never take (or the journal can no
// longer read whole) to the quarantine file.
func (w *writer) setAside(e entry, reason error) error {
	w.metrics.refused.Inc()
	w.log.Error("call record set aside in the journal's quarantine file: it cannot be written to MLflow",
		"journal", w.journal.path, "error", reason)
	return w.journal.quarantine(e)
}

// metrics are the call log's Prometheus metrics.
type metrics struct {
	journaled prometheus.Counter
	written   prometheus.Counter
	retries   prometheus.Counter
	refused   prometheus.Counter
	queued    prometheus.GaugeFunc
	oldest    prometheus.GaugeFunc
	syncTime  prometheus.Histogram // the journal's (journal.syncTime)
}

func newMetrics(j *journal) *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "tidygate", Subsystem: "calllog", Name: name, Help: help}
	}
	return &metrics{
		syncTime: j.syncTime,
		journaled: prometheus.NewCounter(prometheus.CounterOpts(opts("journaled_total",
			"Call records and call intents committed to the local journal."))),
		written: prometheus.NewCounter(prometheus.CounterOpts(opts("written_total",
			"Call records written to the MLflow database and removed from the journal."))),
		retries: prometheus.NewCounter(prometheus.CounterOpts(opts("write_retries_total",
			"Batch writes to the MLflow database that failed and will be retried; their records stay in the journal."))),
		refused: prometheus.NewCounter(prometheus.CounterOpts(opts("write_errors_total",
			"Call records the MLflow database refuses for their content (or the journal can no longer read whole), set aside in the journal's quarantine file."))),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("records_queued",
			"Call records in the journal, not yet written to the MLflow database.")),
			func() float64 { return float64(j.len()) }),
		oldest: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("oldest_undelivered_age_seconds",
			"Age of the oldest call record in the journal; zero when the journal is empty.")),
			func() float64 {
				if at, ok := j.oldest(); ok {
					return time.Since(at).Seconds()
				}
				return 0
			}),
	}
}

// register registers every metric, or none.
func (m *metrics) register(r prometheus.Registerer) error {
	return registerAll(r, m.journaled, m.written, m.retries, m.refused, m.queued, m.oldest, m.syncTime)
}

// registerAll registers every collector on r, or none: those registered
// before one that fails are unregistered.
func registerAll(r prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}
