package mlflow

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// owedValues reads every owed record's value, delivered or not.
func owedValues(t *testing.T, j *journal) []string {
	t.Helper()
	entries, err := j.readOwed()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, string(e.value))
	}
	return out
}

// liveSegments returns the number of segments holding records, delivered
// or not, that the journal has not recycled.
func liveSegments(j *journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.live)
}

// TestAnOwedRecordOutlivesItsDeliveryUntilSettled delivers an owed record
// with the records around it: the journal keeps it (and its segment, and
// every later one) across a restart until a settlement is committed for
// it; an acknowledgement no commit carried is lost with the process, and
// one that rode on the next commit frees the segments.
func TestAnOwedRecordOutlivesItsDeliveryUntilSettled(t *testing.T) {
	const size = 4 << 10
	j := openTestJournal(t, t.TempDir(), size)
	appendAll(t, j, "before", 3, 400)
	seq, err := j.appendKind([]byte("owed-record"), true)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, j, "after", 30, 400) // several segments after the owed record's
	written := liveSegments(j)
	if written < 4 {
		t.Fatalf("the records span %d segments, want at least 4", written)
	}
	entries, err := j.read(100, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.remove(entries); err != nil {
		t.Fatal(err)
	}
	if n := j.len(); n != 0 {
		t.Fatalf("%d records pending after delivering all, want 0", n)
	}
	if got := owedValues(t, j); !slices.Equal(got, []string{"owed-record"}) {
		t.Fatalf("owed after delivery = %q, want the owed record kept", got)
	}
	// The preparer may add a spare at any time, so the files are counted at
	// least; the live segments exactly.
	if live, files := liveSegments(j), segmentFiles(t, j.dir); live != written || len(files) < written {
		t.Fatalf("%d live segments and %d files while the first holds an owed record; want all %d kept, none recycled",
			live, len(files), written)
	}

	j.settle([]uint64{seq}) // noted, not written: the process dies first
	j = reopen(t, j, size)
	if got, pending := owedValues(t, j), pendingValues(t, j); !slices.Equal(got, []string{"owed-record"}) || len(pending) != 0 {
		t.Fatalf("reopened: owed %q, pending %d; want the owed record kept and nothing to deliver again", got, len(pending))
	}

	j.settle([]uint64{seq})
	if err := j.probe(); err != nil { // any commit carries the settlement
		t.Fatal(err)
	}
	if got := owedValues(t, j); len(got) != 0 {
		t.Fatalf("owed after the settlement was committed = %q, want none", got)
	}
	if files := segmentFiles(t, j.dir); len(files) > 1+maxSpares {
		t.Errorf("with the owed record settled, %d segment files remain; want at most the active one and %d spares", len(files), maxSpares)
	}
	j = reopen(t, j, size)
	if got := owedValues(t, j); len(got) != 0 {
		t.Fatalf("reopened after the settlement: owed %q, want none", got)
	}
}

// TestAnUndeliveredOwedRecordIsDeliveredAndSettledApart settles an owed
// record before the writer delivers it: it is still delivered, and once
// delivered it is gone.
func TestAnUndeliveredOwedRecordIsDeliveredAndSettledApart(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), defaultSegmentSize)
	seq, err := j.appendKind([]byte("owed-record"), true)
	if err != nil {
		t.Fatal(err)
	}
	j.settle([]uint64{seq})
	if err := j.flushSettled(); err != nil {
		t.Fatal(err)
	}
	j = reopen(t, j, defaultSegmentSize)
	if got, owed := pendingValues(t, j), owedValues(t, j); !slices.Equal(got, []string{"owed-record"}) || len(owed) != 0 {
		t.Fatalf("settled, not delivered: pending %q, owed %q; want it pending and not owed", got, owed)
	}
}

// TestTheCallLogKeepsOwedSettlementsAcrossAKill records two calls with the
// settlement the ledger owes them and acknowledges one; the journal opened
// again (the process killed, nothing flushed) owes the other as it was
// written, and a Close writes the acknowledgements it still holds.
func TestTheCallLogKeepsOwedSettlementsAcrossAKill(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	opts.FlushInterval = time.Hour
	c, err := Open(ctx, downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 3, 15, 12, 0, 0, 0, time.UTC)
	owe := func(id string) ports.Settlement {
		return ports.Settlement{ReservationID: id, Caller: domain.Caller{KeyID: "key-1", User: "ada", Team: "risk"},
			Model: "gpt", Group: "frontier", Usage: domain.Usage{PromptTokens: 12, CompletionTokens: 30, CacheReadTokens: 4, ReasoningTokens: 2},
			Cost: 1234, At: at}
	}
	for _, id := range []string{"settled", "cut-off"} {
		r := sample(id, 0, 0)
		if err := c.RecordOwing(ctx, r, owe(id)); err != nil {
			t.Fatal(err)
		}
	}
	c.Acknowledge([]string{"settled", "unknown"})
	if err := c.Record(ctx, sample("next", 0, 1)); err != nil { // carries the acknowledgement
		t.Fatal(err)
	}
	if owed, _ := c.Owed(ctx); len(owed) != 0 {
		t.Fatalf("this process's own settlements are owed to Recover: %+v", owed)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	c.writer.stop(stopped) // as if killed: no Close, nothing flushed
	if err := c.journal.close(); err != nil {
		t.Fatal(err)
	}

	c, err = Open(ctx, downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	owed, err := c.Owed(ctx)
	if err != nil || len(owed) != 1 || !reflect.DeepEqual(owed[0], owe("cut-off")) {
		t.Fatalf("reopened: owed %+v (%v), want the settlement of cut-off as it was written", owed, err)
	}
	c.Acknowledge([]string{"cut-off"})
	if owed, _ := c.Owed(ctx); len(owed) != 0 {
		t.Fatalf("owed %+v once acknowledged, want none", owed)
	}
	closeNow(t, c) // writes the acknowledgement
	c, err = Open(ctx, downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	if owed, _ := c.Owed(ctx); len(owed) != 0 {
		t.Fatalf("reopened after Close: owed %+v, want none", owed)
	}
}
