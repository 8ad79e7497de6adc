package mlflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// TestABurstIntoAnEmptyJournalAdmitsOnlyItsLimit admits 50 calls at once
// into an empty journal of at most 5 records: calls admitted but not yet
// recorded count against the limit, so exactly 5 are admitted, the call log
// is not ready while they are in flight or recorded, and records never
// exceed the limit.
func TestABurstIntoAnEmptyJournalAdmitsOnlyItsLimit(t *testing.T) {
	opts := testOptions(t)
	opts.JournalMaxRecords = 5
	c, err := Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready on an empty journal: %v", err)
	}

	const burst = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		releases []func()
		refused  int
	)
	start := make(chan struct{})
	for range burst {
		wg.Go(func() {
			<-start
			release, err := c.Admit()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !strings.Contains(err.Error(), "call log journal is full") {
					t.Errorf("refusal: %v, want call_log_full", err)
				}
				refused++
				return
			}
			releases = append(releases, release)
		})
	}
	close(start)
	wg.Wait()
	if len(releases) != opts.JournalMaxRecords || refused != burst-opts.JournalMaxRecords {
		t.Fatalf("a burst of %d admitted %d and refused %d; want %d admitted", burst, len(releases), refused, opts.JournalMaxRecords)
	}
	if err := c.Ready(); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Ready with every slot held: %v, want unavailable", err)
	}
	for i, release := range releases {
		if err := c.Record(context.Background(), sample("burst-"+string(rune('a'+i)), okChat, 1)); err != nil {
			t.Fatal(err)
		}
		release()
		release() // a second release gives nothing back
	}
	if c.journal.len() != opts.JournalMaxRecords || c.held.Load() != 0 {
		t.Errorf("journal holds %d records with %d slots held; want %d and 0", c.journal.len(), c.held.Load(), opts.JournalMaxRecords)
	}
	if _, err := c.Admit(); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Admit on the full journal: %v, want unavailable", err)
	}
	if err := c.Ready(); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("Ready on the full journal: %v, want unavailable", err)
	}
}

// TestAJournalThatCannotWriteRefusesCalls injects a failing journal write
// (a full disk): the record fails, then Admit and Ready refuse until a
// probe write succeeds again, and the call log admits and records again.
func TestAJournalThatCannotWriteRefusesCalls(t *testing.T) {
	c, err := Open(context.Background(), downConns{}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	release, err := c.Admit()
	if err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("no space left on device")
	c.journal.fault.Store(&diskFull)
	if err := c.Record(context.Background(), sample("disk-full", okChat, 1)); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("Record on a full disk: %v, want unavailable", err)
	}
	release()
	for range 2 { // the probe keeps failing while the disk is full
		if _, err := c.Admit(); !hasCode(err, "call_log_unwritable") {
			t.Fatalf("Admit after a failed write: %v, want call_log_unwritable", err)
		}
		if err := c.Ready(); !hasCode(err, "call_log_unwritable") {
			t.Fatalf("Ready after a failed write: %v, want call_log_unwritable", err)
		}
	}

	c.journal.fault.Store(nil)
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready once the disk has room: %v", err)
	}
	release, err = c.Admit()
	if err != nil {
		t.Fatalf("Admit once the disk has room: %v", err)
	}
	if err := c.Record(context.Background(), sample("disk-ok", okChat, 1)); err != nil {
		t.Fatalf("Record once the disk has room: %v", err)
	}
	release()
	if c.journal.len() != 1 || c.held.Load() != 0 {
		t.Errorf("journal holds %d records with %d slots held; want 1 and 0", c.journal.len(), c.held.Load())
	}
}

func hasCode(err error, code string) bool {
	e, ok := errors.AsType[*domain.Error](err)
	return ok && e.Code == code && e.Kind == domain.KindUnavailable
}

// TestARecordWakesTheWriterOnlyOnceTenBatchesWait checks when a record
// wakes the writer ahead of its tick: once ten whole batches wait in the
// journal (wakeBatches, which this test pins), or once the journal is half
// full if that comes first, and not before. (The writer here does not run,
// so that its wake-up stays to be seen.)
func TestARecordWakesTheWriterOnlyOnceTenBatchesWait(t *testing.T) {
	for _, tc := range []struct {
		batch, max, wakeAt int
	}{
		{batch: 3, max: 1000, wakeAt: 30}, // ten batches
		{batch: 3, max: 40, wakeAt: 20},   // half the journal
		{batch: 5, max: 1, wakeAt: 1},     // a journal of one record
	} {
		j, err := openJournal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		w := &writer{ready: make(chan struct{}, 1)}
		c := &CallLog{opts: Options{BatchSize: tc.batch, JournalMaxRecords: tc.max}, log: slog.New(slog.DiscardHandler),
			journal: j, writer: w, metrics: newMetrics(j)}
		for i := 1; i <= tc.wakeAt; i++ {
			value, err := encodeRecord(sample(fmt.Sprintf("wake-%d", i), 0, i), ContentFull)
			if err == nil {
				_, err = c.appendKind(value, false)
			}
			if err != nil {
				t.Fatal(err)
			}
			if woken, due := len(w.ready) == 1, i == tc.wakeAt; woken != due {
				t.Errorf("batches of %d, a journal of %d: with %d records waiting, woken %t, want %t", tc.batch, tc.max, i, woken, due)
				break
			}
		}
		_ = j.close()
	}
}
