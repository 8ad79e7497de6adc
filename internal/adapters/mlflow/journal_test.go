package mlflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestJournalSurvivesReopening(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := j.append([]byte(fmt.Sprintf("record %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}

	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	if j.len() != 5 {
		t.Fatalf("reopened journal holds %d records, want 5", j.len())
	}
	got, err := j.read(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if want := fmt.Sprintf("record %d", i); string(e.value) != want {
			t.Errorf("entry %d = %q, want %q (arrival order)", i, e.value, want)
		}
	}
	if one, _ := j.read(10, 1); len(one) != 1 {
		t.Errorf("a read limited to 1 byte returned %d entries, want 1", len(one))
	}
	if _, ok := j.oldest(); !ok {
		t.Errorf("a non-empty journal has no oldest record")
	}
	if err := j.remove(got[:3]); err != nil {
		t.Fatal(err)
	}
	if err := j.quarantine(got[3]); err != nil {
		t.Fatal(err)
	}
	if n, _ := j.quarantined(); j.len() != 1 || n != 1 {
		t.Errorf("after removing 3 and setting 1 aside: %d pending, %d quarantined; want 1 and 1", j.len(), n)
	}
	if err := j.remove(got[:3]); err != nil || j.len() != 1 {
		t.Errorf("removing entries twice: %v, %d pending", err, j.len())
	}
}

func TestJournalTakesConcurrentAppends(t *testing.T) {
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := j.append([]byte(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := j.read(n+1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || j.len() != n {
		t.Fatalf("journal holds %d entries (count %d), want %d", len(got), j.len(), n)
	}
	for i := 1; i < len(got); i++ {
		if bytes.Compare(got[i-1].key, got[i].key) >= 0 {
			t.Fatalf("keys are not strictly increasing at %d", i)
		}
	}
}

func TestJournalIsExclusive(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	if _, err := openJournal(dir); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("a second open of the journal: %v, want a lock error", err)
	}
}

func TestAdmitRefusesWhenTheJournalIsFull(t *testing.T) {
	opts := testOptions(t)
	opts.JournalMaxRecords = 3
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	c, err := Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range mixed("full", 3) {
		release, err := c.Admit()
		if err != nil {
			t.Fatalf("Admit before record %d: %v", i, err)
		}
		if err := c.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		release()
	}
	_, err = c.Admit()
	if domain.KindOf(err) != domain.KindUnavailable || !strings.Contains(err.Error(), "call log journal is full (3 records and admitted calls); refusing new calls") {
		t.Errorf("Admit on a full journal: %v", err)
	}
	// A call admitted earlier is still recorded: its record must not be lost.
	if err := c.Record(context.Background(), sample("full-late", okChat, 9)); err != nil {
		t.Errorf("Record on a full journal: %v", err)
	}
	if got := value(t, c.metrics.queued); got != 4 {
		t.Errorf("records_queued = %v, want 4", got)
	}
	if got := value(t, c.metrics.journaled); got != 4 {
		t.Errorf("journaled_total = %v, want 4", got)
	}
	closeNow(t, c)
	if err := c.Record(context.Background(), sample("after-close", okChat, 1)); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Record after Close: %v", err)
	}

	opts.RefuseWhenFull = false
	opts.Registerer = nil
	c, err = Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	if c.journal.len() != 4 {
		t.Errorf("reopened journal holds %d records, want 4", c.journal.len())
	}
	if _, err := c.Admit(); err != nil {
		t.Errorf("Admit with JournalWhenFull=accept: %v", err)
	}
}

func TestRecordKeepsTheCallWhenItsContextEnds(t *testing.T) {
	opts := testOptions(t)
	c, err := Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Record may return before the commit, with an error; the record is kept anyway.
	if err := c.Record(ctx, sample("gone-client", okChat, 1)); err != nil && domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Record with a cancelled context: %v", err)
	}
	if err := c.Record(context.Background(), domain.CallRecord{}); err == nil {
		t.Errorf("a record without a request id is accepted")
	}
	closeNow(t, c) // waits for the append in flight
	j, err := openJournal(opts.JournalDir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.close() }()
	if j.len() != 1 {
		t.Errorf("journal holds %d records, want 1", j.len())
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	opts := testOptions(t)
	opts.LogMode, opts.Content, opts.BatchSize = "everything", "some", 0
	_, err := Open(context.Background(), downConns{}, opts)
	for _, want := range []string{`log mode "everything"`, `content mode "some"`, "batch size (MLFLOW_WRITER_BATCH_SIZE) must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %v does not mention %s", err, want)
		}
	}
}

func TestOpenWithRequireDatabaseFailsWhenItIsDown(t *testing.T) {
	opts := testOptions(t)
	opts.RequireDatabase = true
	_, err := Open(context.Background(), downConns{}, opts)
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("Open: %v, want an unavailable error", err)
	}
	// The journal was released: it can be opened again.
	j, err := openJournal(opts.JournalDir)
	if err != nil {
		t.Fatal(err)
	}
	_ = j.close()
}

func TestFlushReturnsWhenItsContextEnds(t *testing.T) {
	c, err := Open(context.Background(), downConns{}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	if err := c.Record(context.Background(), sample("stuck", okChat, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with the database down and a cancelled context: %v", err)
	}
}

// BenchmarkRecord measures journal appends (Record up to the commit) from
// one caller and from many; concurrent callers share commits.
func BenchmarkRecord(b *testing.B) {
	for _, callers := range []int{1, 32} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			c, err := Open(context.Background(), downConns{}, testOptions(b))
			if err != nil {
				b.Fatal(err)
			}
			defer closeNow(b, c)
			var next atomic.Int64
			record := func() bool {
				err := c.Record(context.Background(), sample(fmt.Sprint("bench-", next.Add(1)), okChat, 1))
				if err != nil {
					b.Error(err)
				}
				return err == nil
			}
			b.ResetTimer()
			if callers == 1 {
				for b.Loop() {
					if !record() {
						return
					}
				}
			} else {
				b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !record() {
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// value returns the current value of a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.GetCounter().GetValue()
	}
	return out.GetGauge().GetValue()
}

// TestLogOffRecordsNothing opens the call log switched off: it needs no
// database (downConns would fail every acquire), writes no journal, admits
// and records calls, and says so in its log.
func TestLogOffRecordsNothing(t *testing.T) {
	opts := testOptions(t)
	opts.LogMode, opts.RequireDatabase = LogOff, true
	var logged bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	c, err := Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatalf("Open with LogOff: %v", err)
	}
	if _, err := c.Admit(); err != nil {
		t.Errorf("Admit: %v", err)
	}
	if err := c.Record(context.Background(), sample("off", okChat, 1)); err != nil {
		t.Errorf("Record: %v", err)
	}
	if err := c.Record(context.Background(), domain.CallRecord{}); err == nil {
		t.Errorf("a record without a request id is accepted")
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Errorf("Flush: %v", err)
	}
	closeNow(t, c)
	if _, err := c.Admit(); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Admit after Close: %v, want unavailable", err)
	}
	if entries, err := os.ReadDir(opts.JournalDir); err != nil || len(entries) != 0 {
		t.Errorf("journal directory holds %d entries (%v); want none", len(entries), err)
	}
	if !strings.Contains(logged.String(), "MLFLOW_LOG_MODE=off") {
		t.Errorf("Open did not warn that the call log is off; log: %s", logged.String())
	}
}
