package mlflow

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// appendAll appends n records named prefix-0 … and returns their values.
func appendAll(t *testing.T, j *journal, prefix string, n, size int) [][]byte {
	t.Helper()
	var values [][]byte
	for i := range n {
		v := []byte(fmt.Sprintf("%s-%d:", prefix, i))
		v = append(v, bytes.Repeat([]byte{'x'}, max(0, size-len(v)))...)
		if _, err := j.append(v); err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	return values
}

// pendingValues reads every pending record's value.
func pendingValues(t *testing.T, j *journal) []string {
	t.Helper()
	entries, err := j.read(1<<30, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.damaged != nil {
			t.Errorf("record %d is damaged: %v", keySeq(e.key), e.damaged)
		}
		out = append(out, string(e.value))
	}
	return out
}

// openTestJournal opens the journal in dir, closed when the test ends.
func openTestJournal(t *testing.T, dir string, segmentSize int64) *journal {
	t.Helper()
	j, err := openJournalSegments(dir, segmentSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	return j
}

// reopen closes j and opens its directory again.
func reopen(t *testing.T, j *journal, segmentSize int64) *journal {
	t.Helper()
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	return openTestJournal(t, j.dir, segmentSize)
}

func strs(values [][]byte) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// segmentFiles returns the journal's segment files, in name order.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestFramesRoundTripAndRejectEveryFlippedByte(t *testing.T) {
	f := frame{kind: kindRecord, seq: 42, at: 1_700_000_000_000_000_000, payload: []byte(`{"request_id":"r1"}`)}
	b := appendFrame(nil, 7, f)
	got, size, ok := decodeFrame(append(b, 0, 0, 0), 7)
	if !ok || size != len(b) || got.seq != 42 || got.at != f.at || got.kind != kindRecord || string(got.payload) != string(f.payload) {
		t.Fatalf("decodeFrame = %+v, %d, %v; want the frame back, size %d", got, size, ok, len(b))
	}
	if _, _, ok := decodeFrame(b, 8); ok {
		t.Errorf("a frame of segment 7 decodes as one of segment 8")
	}
	if _, _, ok := decodeFrame(b[:len(b)-1], 7); ok {
		t.Errorf("a frame cut short by one byte decodes")
	}
	for i := range b {
		flipped := bytes.Clone(b)
		flipped[i] ^= 0x10
		if _, _, ok := decodeFrame(flipped, 7); ok {
			t.Errorf("a frame with byte %d flipped decodes", i)
		}
	}
	h := appendSegmentHeader(nil, 9, 100)
	if id, first, ok := decodeSegmentHeader(h); !ok || id != 9 || first != 100 {
		t.Errorf("segment header = %d, %d, %v; want 9, 100", id, first, ok)
	}
	h[10] ^= 1
	if _, _, ok := decodeSegmentHeader(h); ok {
		t.Errorf("a corrupted segment header decodes")
	}
	if _, _, ok := decodeSegmentHeader(make([]byte, segmentHeaderSize)); ok {
		t.Errorf("a zeroed (fresh) segment decodes as having a header")
	}
}

// TestGroupCommitSharesOneFdatasync appends from 200 goroutines at once:
// every append is durable when it returns, and appends waiting while a
// commit runs share the next one, so there are fewer syncs than appends.
func TestGroupCommitSharesOneFdatasync(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 64<<10)
	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if _, err := j.append(fmt.Appendf(nil, "record %03d %s", i, strings.Repeat("y", 500))); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	syncs := j.syncs.Load()
	if syncs >= n || syncs == 0 {
		t.Errorf("%d appends took %d fdatasyncs; concurrent appends must share them", n, syncs)
	}
	got := pendingValues(t, j)
	if len(got) != n || j.len() != n {
		t.Fatalf("journal holds %d records (count %d), want %d", len(got), j.len(), n)
	}
	j2 := reopen(t, j, 64<<10)
	if again := pendingValues(t, j2); !slices.Equal(again, got) {
		t.Errorf("after reopening the journal holds %d records, want the same %d in the same order", len(again), len(got))
	}
	t.Logf("%d concurrent appends, %d fdatasyncs", n, syncs)
}

// TestJournalSyncTimeIsServed checks that every durable commit lands in
// tidygate_calllog_journal_sync_seconds beside the call log's other
// metrics.
func TestJournalSyncTimeIsServed(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 64<<10)
	reg := prometheus.NewRegistry()
	if err := newMetrics(j).register(reg); err != nil {
		t.Fatal(err)
	}
	appendAll(t, j, "timed", 3, 100)
	entries, err := j.read(100, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.remove(entries); err != nil { // a delivery mark: one more commit
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, f := range families {
		if f.GetName() == "tidygate_calllog_journal_sync_seconds" {
			observed = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if observed != 4 || j.syncs.Load() != 4 {
		t.Fatalf("3 appends and a delivery mark: %d commits observed, %d fdatasyncs; want 4 of each", observed, j.syncs.Load())
	}
}

// TestSegmentsRollOverAndAreRecycled fills several small segments, delivers
// the records in two steps, and checks that delivered segments are reused
// or deleted, never resurrected, and that sequence numbers keep rising.
func TestSegmentsRollOverAndAreRecycled(t *testing.T) {
	const size = 4 << 10
	j := openTestJournal(t, t.TempDir(), size)
	values := appendAll(t, j, "roll", 40, 400) // ~440 bytes a frame: 9 a segment
	if n := len(segmentFiles(t, j.dir)); n < 5 {
		t.Fatalf("40 records of 400 bytes in segments of 4 KiB made %d segment files, want at least 5", n)
	}
	entries, err := j.read(25, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.remove(entries); err != nil {
		t.Fatal(err)
	}
	if got := pendingValues(t, j); !slices.Equal(got, strs(values[25:])) {
		t.Fatalf("after delivering 25: %d pending, want the last 15 in order", len(got))
	}
	j = reopen(t, j, size)
	if got := pendingValues(t, j); !slices.Equal(got, strs(values[25:])) {
		t.Fatalf("reopened after delivering 25: %d pending, want the last 15 in order", len(got))
	}
	entries, err = j.read(100, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := keySeq(entries[len(entries)-1].key)
	if err := j.remove(entries); err != nil {
		t.Fatal(err)
	}
	if files := segmentFiles(t, j.dir); len(files) > 1+maxSpares {
		t.Errorf("with every record delivered, %d segment files remain; want at most the active one and %d spares", len(files), maxSpares)
	}
	more := appendAll(t, j, "again", 30, 400) // reuses the recycled segments
	j = reopen(t, j, size)
	got, err := j.read(100, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if vals := pendingValues(t, j); !slices.Equal(vals, strs(more)) {
		t.Fatalf("after recycling and reuse, the journal holds %q…; want only the 30 new records (no old record resurrected)", vals[:min(3, len(vals))])
	}
	if first := keySeq(got[0].key); first <= lastSeq {
		t.Errorf("a record after recycling has sequence number %d, not above the delivered %d", first, lastSeq)
	}
}

// TestATornTailIsCutOff simulates a power loss during the last commit: the
// last record's frame only partly reached the disk. Reopening keeps every
// earlier record, reports the torn tail, and appends continue over it.
func TestATornTailIsCutOff(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 64<<10)
	values := appendAll(t, j, "torn", 5, 300)
	last := j.records[len(j.records)-1]
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	// The frame's header and half its payload reached the disk.
	f, err := os.OpenFile(last.seg.name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, last.n/2), last.off+frameHeaderSize+int64(last.n/2)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	j = openTestJournal(t, j.dir, 64<<10)
	if got := pendingValues(t, j); !slices.Equal(got, strs(values[:4])) {
		t.Fatalf("after a torn last write: %d records, want the first 4", len(got))
	}
	if len(j.recovered.torn) != 1 || len(j.recovered.damaged) != 0 {
		t.Errorf("recovery = %+v, want one torn tail and no damage", j.recovered)
	}
	more := appendAll(t, j, "after", 2, 300)
	j = reopen(t, j, 64<<10)
	if got := pendingValues(t, j); !slices.Equal(got, append(strs(values[:4]), strs(more)...)) {
		t.Errorf("appends after the cut: %q", got)
	}
	if len(j.recovered.torn) != 0 {
		t.Errorf("the torn tail is reported again after it was written over")
	}
}

// TestACorruptRecordInTheMiddleKeepsTheRecordsAfterIt flips a byte inside
// the third of six committed records (bit rot, a bad sector): reopening
// loses that record only, keeps the five others in order, reports the
// damaged range and copies its bytes beside the segments.
func TestACorruptRecordInTheMiddleKeepsTheRecordsAfterIt(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 64<<10)
	values := appendAll(t, j, "mid", 6, 200)
	third := j.records[2]
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	corrupt(t, third.seg.name, third.off+frameHeaderSize+10)

	j = openTestJournal(t, j.dir, 64<<10)
	want := append(strs(values[:2]), strs(values[3:])...)
	if got := pendingValues(t, j); !slices.Equal(got, want) {
		t.Fatalf("after corrupting record 3 of 6: %d records %q, want the 5 others", len(got), got)
	}
	if len(j.recovered.damaged) != 1 {
		t.Fatalf("recovery = %+v, want one damaged range", j.recovered)
	}
	d := j.recovered.damaged[0]
	if d.off != third.off || d.n != frameHeaderSize+int64(third.n) {
		t.Errorf("damaged range at %d, %d bytes; want the third frame: %d, %d bytes", d.off, d.n, third.off, frameHeaderSize+third.n)
	}
	if saved, err := os.ReadFile(d.saved); err != nil || !bytes.Contains(saved, []byte("mid-2:")) {
		t.Errorf("the damaged bytes were not copied to %q (%v)", d.saved, err)
	}
	// Appends go on after the last record, and the records stay in order.
	more := appendAll(t, j, "later", 1, 10)
	j = reopen(t, j, 64<<10)
	if got := pendingValues(t, j); !slices.Equal(got, append(want, strs(more)...)) {
		t.Errorf("after appending past the damage: %q", got)
	}
}

// TestARecordDamagedWhileOpenIsSetAside corrupts a record on disk after it
// was committed, while the journal is open: reading it back reports it as
// damaged, so the writer sets it aside instead of delivering what it reads.
func TestARecordDamagedWhileOpenIsSetAside(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 64<<10)
	appendAll(t, j, "rot", 3, 100)
	corrupt(t, j.records[1].seg.name, j.records[1].off+frameHeaderSize+5)
	entries, err := j.read(10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].damaged != nil || entries[1].damaged == nil || entries[2].damaged != nil {
		t.Fatalf("damage read back: %v, %v, %v; want only the second", entries[0].damaged, entries[1].damaged, entries[2].damaged)
	}
	if err := j.quarantine(entries[1]); err != nil {
		t.Fatal(err)
	}
	if n, _ := j.quarantined(); n != 1 || j.len() != 2 {
		t.Errorf("%d set aside, %d pending; want 1 and 2", n, j.len())
	}
	line, err := os.ReadFile(filepath.Join(j.dir, quarantineFile))
	if err != nil || !bytes.Contains(line, []byte(`"raw":`)) {
		t.Errorf("quarantine file %q (%v), want the damaged bytes in base64", line, err)
	}
}

// TestStateAfterKill9IsRecovered copies the journal's files while it is
// open, as a kill -9 would leave them (everything committed is in the
// files; nothing was closed), and opens the copy.
func TestStateAfterKill9IsRecovered(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 8<<10)
	values := appendAll(t, j, "kill", 30, 300)
	entries, err := j.read(10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.remove(entries); err != nil {
		t.Fatal(err)
	}
	if err := j.quarantine(must(j.read(1, 1<<30))[0]); err != nil {
		t.Fatal(err)
	}
	copied := t.TempDir()
	for _, name := range append(segmentFiles(t, j.dir), filepath.Join(j.dir, quarantineFile)) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copied, filepath.Base(name)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k := openTestJournal(t, copied, 8<<10)
	if got := pendingValues(t, k); !slices.Equal(got, strs(values[11:])) {
		t.Errorf("after kill -9: %d pending, want the 19 neither delivered nor set aside", len(got))
	}
	if n, _ := k.quarantined(); n != 1 {
		t.Errorf("after kill -9: %d set aside, want 1", n)
	}
}

// TestProbeAndAppendAfterCloseFail checks that a probe racing Close gets
// an error instead of writing into a closed journal.
func TestProbeAndAppendAfterCloseFail(t *testing.T) {
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.probe(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if err := j.probe(); err == nil {
		t.Errorf("a probe after close succeeded")
	}
}

// TestTheBboltJournalOfAnEarlierReleaseIsMoved writes a journal the way
// the previous release did (a bbolt file with pending and quarantined
// records) and opens the directory: every record is moved, in order and
// with its time, and the old file is gone.
func TestTheBboltJournalOfAnEarlierReleaseIsMoved(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, boltJournalFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	const pending = 2500 // more than one migration chunk
	err = db.Update(func(tx *bolt.Tx) error {
		p, err := tx.CreateBucket([]byte("pending"))
		if err != nil {
			return err
		}
		q, err := tx.CreateBucket([]byte("quarantine"))
		if err != nil {
			return err
		}
		for i := range pending {
			key := make([]byte, 16)
			binary.BigEndian.PutUint64(key, uint64(i+1))
			binary.BigEndian.PutUint64(key[8:], uint64(at.Add(time.Duration(i)*time.Second).UnixNano()))
			if err := p.Put(key, fmt.Appendf(nil, `{"request_id":"old-%d"}`, i)); err != nil {
				return err
			}
		}
		return q.Put(recordKey(99999, at.UnixNano()), []byte(`{"request_id":"poison"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	got := pendingValues(t, j)
	if len(got) != pending || got[0] != `{"request_id":"old-0"}` || got[pending-1] != fmt.Sprintf(`{"request_id":"old-%d"}`, pending-1) {
		t.Fatalf("moved %d records, want %d in order", len(got), pending)
	}
	if oldest, ok := j.oldest(); !ok || !oldest.Equal(at) {
		t.Errorf("oldest record journaled %v, want %v (the time kept from the old journal)", oldest, at)
	}
	if n, _ := j.quarantined(); n != 1 {
		t.Errorf("%d records set aside, want the 1 of the old journal", n)
	}
	if _, err := os.Stat(filepath.Join(dir, boltJournalFile)); !os.IsNotExist(err) {
		t.Errorf("the old journal file is still there (%v)", err)
	}
	if j.recovered.migrated != pending || j.recovered.migratedQuarantined != 1 {
		t.Errorf("recovery = %+v", j.recovered)
	}
	j = reopen(t, j, defaultSegmentSize)
	if j.len() != pending {
		t.Errorf("reopened after the move: %d records, want %d (moved once)", j.len(), pending)
	}
}

// corrupt flips one byte of the file at off.
func corrupt(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzScanSegment feeds arbitrary bytes to the segment decoder, after a
// valid header and after valid frames: it must never panic, and every
// frame it returns must be one that encodes back to the bytes it was read
// from, in rising sequence order, inside the segment.
func FuzzScanSegment(f *testing.F) {
	valid := appendFrame(nil, 3, frame{kind: kindRecord, seq: 5, at: 1, payload: []byte(`{"request_id":"a"}`)})
	valid = appendFrame(valid, 3, frame{kind: kindDelivered, seq: 6, at: 2, payload: encodeSeqs([]uint64{5})})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid[:20]), valid...))
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(appendSegmentHeader(nil, 3, 5), body...)
		s := scanSegment(data, 3, 5)
		prev, end := uint64(4), int64(segmentHeaderSize)
		for _, fr := range s.frames {
			if fr.off < end || fr.seq <= prev {
				t.Fatalf("frame at %d (seq %d) overlaps or is out of order (end %d, seq %d)", fr.off, fr.seq, end, prev)
			}
			re := appendFrame(nil, 3, fr.frame)
			if !bytes.Equal(re, data[fr.off:fr.off+int64(len(re))]) {
				t.Fatalf("frame at %d does not encode back to its bytes", fr.off)
			}
			prev, end = fr.seq, fr.off+int64(len(re))
		}
		if s.end < end || s.end > int64(len(data)) {
			t.Fatalf("end %d outside [%d, %d]", s.end, end, len(data))
		}
		for _, d := range s.damaged {
			if d.from >= d.to || d.to > int64(len(data)) {
				t.Fatalf("damaged range %v outside the segment", d)
			}
		}
		decodeSeqs(body)
	})
}

// TestReadBackReadsRunsOfRecordsWhole reads pending records that lie in
// several segments, with delivered records between them (some further
// apart than one read spans), and checks each comes back whole and in order.
func TestReadBackReadsRunsOfRecordsWhole(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 256<<10)
	var want []string
	for i := range 40 {
		size := 2000
		if i%7 == 3 {
			size = maxReadGap + 1000 // delivered below: a gap one read does not span
		}
		values := appendAll(t, j, fmt.Sprintf("r%d", i), 1, size)
		if i%3 != 0 && i%7 != 3 {
			want = append(want, string(values[0]))
		}
	}
	entries, err := j.read(1<<30, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var delivered []entry
	for i, e := range entries {
		if i%3 == 0 || i%7 == 3 {
			delivered = append(delivered, e)
		}
	}
	if err := j.remove(delivered); err != nil {
		t.Fatal(err)
	}
	if len(segmentFiles(t, j.dir)) < 2 {
		t.Fatal("the records fit in one segment; the test needs several")
	}
	if got := pendingValues(t, j); !slices.Equal(got, want) {
		t.Errorf("read back %d records, want %d, or not the same", len(got), len(want))
	}
}
