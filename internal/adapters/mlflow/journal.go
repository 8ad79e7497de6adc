package mlflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// defaultSegmentSize is the size of a segment file, preallocated with
	// zeros so that a commit writes data only: its fdatasync has no file
	// size or block allocation to record.
	defaultSegmentSize = 8 << 20
	// maxSpares is the most delivered segments kept for reuse; more are deleted.
	maxSpares = 2
	// maxGroup is the most frames one commit takes.
	maxGroup = 1000
	// maxReadGap is the most bytes of other frames (delivery marks,
	// records already delivered) that one read back spans between two
	// records rather than reading them apart; maxRead bounds one read.
	maxReadGap = 64 << 10
	maxRead    = 8 << 20
)

var errJournalClosed = errors.New("call log journal is closed")

// journal is the durable queue between Record and the writer: append-only
// segment files in one directory (see journal_frame.go for the format).
// A record is a frame; once the writer has delivered it (or set it aside),
// a kindDelivered frame names it. A record whose call's settlement the
// ledger owes (a kindOwes frame follows it) is kept until a kindSettled
// frame names it too, delivered or not. A segment without records still to deliver or to
// settle, and every older one, is recycled: kept as a spare for reuse (its
// next header gives it a new id, so its old frames are never read again)
// or deleted.
//
// Appends are group-committed by one goroutine, the committer: it writes
// whatever appends are waiting with one pwrite and makes them durable with
// one fdatasync, and while that runs the next appends queue up for the next
// commit. A lone append is committed at once, with no timer to wait for
// others. Only a group that crosses into a new segment syncs twice.
//
// The journal memory-maps nothing: it keeps only an index of the pending
// records (sequence number, time, position) and reads a record back with
// pread when the writer asks for it.
type journal struct {
	dir         string
	path        string // what logs name: the directory
	segmentSize int64
	lock        *os.File // holds the directory's lock while open

	requests  chan *request
	committed chan struct{} // closed when the committer has stopped
	gate      sync.RWMutex  // held for reading while sending a request, for writing by close
	closing   bool          // under gate
	closeOnce sync.Once
	closeErr  error

	prepare  chan struct{} // wakes the preparer (capacity 1)
	stopPrep chan struct{}
	prepared chan struct{} // closed when the preparer has stopped

	// The committer's own state.
	nextSeq uint64
	buf     []byte

	mu        sync.Mutex
	active    *segment   // where appends go; nil when the next commit must start a segment
	live      []*segment // segments that may hold pending records, oldest first; active is last
	spares    []*segment // recycled or preallocated segments without an id
	records   []indexed  // records, in sequence order, pending or owed from head on (some may be delivered)
	head      int
	acks      []uint64 // owed records settled, whose kindSettled frame the next commit carries
	nextSegID uint64
	nextFile  uint64 // the number in the next new segment's file name

	qlog quarantineLog // records set aside

	pending atomic.Int64 // the number of records not delivered
	syncs   atomic.Int64 // commits made durable, each with one fdatasync
	// syncTime observes how long each durable commit took (its pwrite
	// and its fdatasync): what a record's answer waits for.
	syncTime prometheus.Histogram

	// fault, when set, fails every append and probe with its error before
	// anything is written: tests inject a full disk with it.
	fault atomic.Pointer[error]

	recovered recovery // what opening found, for the call log to report
}

// segment is one segment file.
type segment struct {
	f    *os.File
	name string
	size int64
	id   uint64 // under journal.mu; zero for a spare
	end  int64  // where the next frame goes; the committer's
	live int    // records in it not delivered, or owed; under journal.mu
}

// indexed is one record's place in the journal.
type indexed struct {
	seq   uint64
	at    int64
	seg   *segment
	segID uint64
	off   int64 // the frame's offset
	n     uint32
	done  bool // delivered or set aside
	owed  bool // its settlement is owed (kindOwes) and no kindSettled frame names it yet
}

// request is one commit's worth of frames from one caller.
type request struct {
	frames []frame
	done   chan error
	placed []indexed // the record frames, as the committer placed them
}

// entry is one journaled record as the writer reads it: its key (the
// sequence number and the time it was journaled, 8 bytes each, big-endian)
// and its value. damaged is set when the record no longer matches its
// checksum: it is set aside, never delivered.
type entry struct {
	key     []byte
	value   []byte
	damaged error
}

func recordKey(seq uint64, at int64) []byte {
	key := make([]byte, 16)
	binary.BigEndian.PutUint64(key, seq)
	binary.BigEndian.PutUint64(key[8:], uint64(at))
	return key
}

func keySeq(key []byte) uint64 {
	if len(key) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(key)
}

func keyTime(key []byte) int64 {
	if len(key) < 16 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(key[8:]))
}

// syncBuckets are tidygate_calllog_journal_sync_seconds's bucket bounds:
// fine from 50 µs to 5 ms, where a healthy disk's fdatasync falls, then
// coarser up to a stalled disk's seconds.
var syncBuckets = []float64{
	0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, 0.001,
	0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// newSyncTime returns the histogram of the journal's durable commits,
// registered with the call log's other metrics (see newMetrics).
func newSyncTime() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "tidygate", Subsystem: "calllog", Name: "journal_sync_seconds",
		Help: "Duration of each durable commit of the call log's journal: one pwrite and one fdatasync " +
			"for every record and mark waiting. A call's answer waits for the commit of its record.",
		Buckets: syncBuckets,
	})
}

func openJournal(dir string) (*journal, error) {
	return openJournalSegments(dir, defaultSegmentSize)
}

// openJournalSegments opens the journal in dir with segments of
// segmentSize bytes: it takes the directory's lock, reads every segment,
// moves the records of an earlier release's bbolt journal into it, and
// starts the committer.
func openJournalSegments(dir string, segmentSize int64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("call log journal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j := &journal{
		dir: dir, path: dir, segmentSize: segmentSize, lock: lock, nextSeq: 1, nextSegID: 1, syncTime: newSyncTime(),
		requests: make(chan *request), committed: make(chan struct{}),
		prepare: make(chan struct{}, 1), stopPrep: make(chan struct{}), prepared: make(chan struct{}),
	}
	if err := j.load(); err != nil {
		return nil, errors.Join(fmt.Errorf("call log journal %s: %w", dir, err), j.closeFiles())
	}
	if j.active == nil && len(j.spares) == 0 {
		// The first call should not wait for a segment to be preallocated.
		seg, err := j.createSegment(segmentSize)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("call log journal %s: %w", dir, err), j.closeFiles())
		}
		j.spares = append(j.spares, seg)
	}
	go j.commit()
	go j.prepareSpares()
	if err := j.migrateBolt(); err != nil {
		return nil, errors.Join(fmt.Errorf("call log journal %s: %w", dir, err), j.close())
	}
	return j, nil
}

// append commits value as a record, sharing the commit (and its fdatasync)
// with concurrent appends, and returns the number of pending records.
func (j *journal) append(value []byte) (int, error) {
	_, err := j.appendKind(value, false)
	if err != nil {
		return 0, err
	}
	return j.len(), nil
}

// appendKind commits value as a record, owed when owes is set (a
// kindOwes frame follows it in the same commit), and returns its sequence
// number.
func (j *journal) appendKind(value []byte, owes bool) (uint64, error) {
	if len(value) > maxPayload {
		return 0, fmt.Errorf("call record of %d bytes exceeds the journal's limit of %d", len(value), maxPayload)
	}
	at := time.Now().UnixNano()
	r := &request{frames: []frame{{kind: kindRecord, at: at, payload: value}}}
	if owes {
		r.frames = append(r.frames, frame{kind: kindOwes, at: at})
	}
	if err := j.submit(r); err != nil {
		return 0, err
	}
	return r.placed[0].seq, nil
}

// probe commits a frame without content and returns its error: whether
// the journal takes writes now.
func (j *journal) probe() error {
	return j.submit(&request{frames: []frame{{kind: kindProbe, at: time.Now().UnixNano()}}})
}

// submit hands r to the committer and waits for the commit's outcome.
func (j *journal) submit(r *request) error {
	r.done = make(chan error, 1)
	j.gate.RLock()
	if j.closing {
		j.gate.RUnlock()
		return errJournalClosed
	}
	j.requests <- r
	j.gate.RUnlock()
	return <-r.done
}

// injected returns the fault a test injected, if any.
func (j *journal) injected() error {
	if err := j.fault.Load(); err != nil {
		return *err
	}
	return nil
}

// read returns the oldest pending records: up to limit of them, and no
// more once their values add up to maxBytes (but at least one). Each is
// read from its segment and checked against its checksum.
func (j *journal) read(limit, maxBytes int) ([]entry, error) {
	var picks []indexed
	j.mu.Lock()
	size := 0
	for i := j.head; i < len(j.records) && len(picks) < limit && size < maxBytes; i++ {
		if r := j.records[i]; !r.done {
			size += int(r.n)
			picks = append(picks, r)
		}
	}
	j.mu.Unlock()
	return j.readBack(picks)
}

// readOwed returns every owed record, delivered or not.
func (j *journal) readOwed() ([]entry, error) {
	var picks []indexed
	j.mu.Lock()
	for _, r := range j.records[j.head:] {
		if r.owed {
			picks = append(picks, r)
		}
	}
	j.mu.Unlock()
	return j.readBack(picks)
}

// readBack reads the records picks from their segments and checks each
// against its checksum.
func (j *journal) readBack(picks []indexed) ([]entry, error) {
	out := make([]entry, 0, len(picks))
	for len(picks) > 0 {
		// One pread for a run of records close together in one segment
		// (usually a batch's: appended one after another), not one each.
		first := picks[0]
		end := first.off + frameHeaderSize + int64(first.n)
		k := 1
		for ; k < len(picks); k++ {
			p := picks[k]
			pEnd := p.off + frameHeaderSize + int64(p.n)
			if p.seg != first.seg || p.segID != first.segID || p.off < end || p.off-end > maxReadGap || pEnd-first.off > maxRead {
				break
			}
			end = pEnd
		}
		buf := make([]byte, end-first.off)
		if _, err := first.seg.f.ReadAt(buf, first.off); err != nil {
			return nil, fmt.Errorf("call log journal %s: read record %d: %w", first.seg.name, first.seq, err)
		}
		for _, r := range picks[:k] {
			from := r.off - first.off
			to := from + frameHeaderSize + int64(r.n)
			b := buf[from:to:to]
			e := entry{key: recordKey(r.seq, r.at), value: b[frameHeaderSize:]}
			if f, _, ok := decodeFrame(b, r.segID); !ok || f.seq != r.seq {
				e.damaged = fmt.Errorf("call log journal %s: record %d at offset %d no longer matches its checksum", r.seg.name, r.seq, r.off)
			}
			out = append(out, e)
		}
		picks = picks[k:]
	}
	return out, nil
}

// remove marks delivered records as such: a kindDelivered frame names them,
// and segments left without pending records are recycled. Entries already
// removed are skipped.
func (j *journal) remove(entries []entry) error {
	seqs := make([]uint64, 0, len(entries))
	j.mu.Lock()
	for _, e := range entries {
		seq := keySeq(e.key)
		if i, ok := j.find(seq); ok && !j.records[i].done && !slices.Contains(seqs, seq) {
			seqs = append(seqs, seq)
		}
	}
	j.mu.Unlock()
	if len(seqs) == 0 {
		return nil
	}
	err := j.submit(&request{frames: []frame{{kind: kindDelivered, at: time.Now().UnixNano(), payload: encodeSeqs(seqs)}}})
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, seq := range seqs {
		if i, ok := j.find(seq); ok && !j.records[i].done {
			j.records[i].done = true
			if !j.records[i].owed {
				j.records[i].seg.live--
			}
			j.pending.Add(-1)
		}
	}
	j.advance()
	return nil
}

// settle notes that the owed records seqs are settled. It does not write:
// the next commit carries a kindSettled frame naming them (see
// takeSettled), or flushSettled when no other comes; until then, and if a
// crash comes first, they stay owed.
func (j *journal) settle(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.acks = append(j.acks, seqs...)
}

// takeSettled returns a request for a kindSettled frame naming the owed
// records settled since the last one, or nil when there are none. The
// caller commits it and passes it to settled with the outcome.
func (j *journal) takeSettled() *request {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.acks) == 0 {
		return nil
	}
	r := &request{frames: []frame{{kind: kindSettled, at: time.Now().UnixNano(), payload: encodeSeqs(j.acks)}}}
	j.acks = j.acks[:0]
	return r
}

// settled gives the records r names back to the next commit when its
// commit failed (err is not nil); a commit that succeeded has marked them
// settled already (markSettled), before any request of its group was told.
func (j *journal) settled(r *request, err error) {
	if err == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.acks = append(j.acks, decodeSeqs(r.frames[0].payload)...)
}

// markSettled marks the records a committed kindSettled frame names
// settled, so that their segments may go. j.mu must be held.
func (j *journal) markSettled(payload []byte) {
	for _, seq := range decodeSeqs(payload) {
		if i, ok := j.find(seq); ok && j.records[i].owed {
			j.records[i].owed = false
			if j.records[i].done {
				j.records[i].seg.live--
			}
		}
	}
	j.advance()
}

// flushSettled commits the settlements noted since the last commit, for a
// journal that has nothing else to commit.
func (j *journal) flushSettled() error {
	r := j.takeSettled()
	if r == nil {
		return nil
	}
	err := j.submit(r)
	j.settled(r, err)
	return err
}

// find returns the index in records of seq's record. It needs mu.
func (j *journal) find(seq uint64) (int, bool) {
	i, ok := slices.BinarySearchFunc(j.records[j.head:], seq, func(r indexed, seq uint64) int {
		switch {
		case r.seq < seq:
			return -1
		case r.seq > seq:
			return 1
		}
		return 0
	})
	return j.head + i, ok
}

// advance moves head past delivered records, compacts the index, and
// recycles the oldest segments while no record in them is pending. It
// needs mu.
func (j *journal) advance() {
	for j.head < len(j.records) && j.records[j.head].done && !j.records[j.head].owed {
		j.head++
	}
	if j.head > 1024 && j.head > len(j.records)/2 {
		n := copy(j.records, j.records[j.head:])
		clear(j.records[n:])
		j.records, j.head = j.records[:n], 0
	}
	for len(j.live) > 0 && j.live[0] != j.active && j.live[0].live == 0 {
		seg := j.live[0]
		j.live[0] = nil
		j.live = j.live[1:]
		j.recycle(seg)
	}
}

// recycle keeps seg as a spare, or deletes it when there are enough spares
// or it has another size than a new segment. A spare's header is zeroed,
// so that its delivered records are not read again at the next start even
// after the segment holding their kindDelivered frames is reused (were
// that write lost, they would be delivered again, which changes nothing).
// It needs mu.
func (j *journal) recycle(seg *segment) {
	if seg.size == j.segmentSize && len(j.spares) < maxSpares {
		if seg.id != 0 {
			_, _ = seg.f.WriteAt(make([]byte, segmentHeaderSize), 0)
		}
		seg.id, seg.end = 0, 0
		j.spares = append(j.spares, seg)
		return
	}
	_ = seg.f.Close()
	_ = os.Remove(seg.name)
}

// len returns the number of pending records.
func (j *journal) len() int { return int(j.pending.Load()) }

// oldest returns when the oldest pending record was journaled; ok is false
// when nothing is pending.
func (j *journal) oldest() (at time.Time, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.records[j.head:] {
		if !r.done {
			return time.Unix(0, r.at), true
		}
	}
	return time.Time{}, false
}

// close stops the committer and the preparer and closes the files;
// appends must have returned.
func (j *journal) close() error {
	j.closeOnce.Do(func() {
		j.gate.Lock()
		j.closing = true
		close(j.requests)
		j.gate.Unlock()
		<-j.committed
		close(j.stopPrep)
		<-j.prepared
		j.closeErr = j.closeFiles()
	})
	return j.closeErr
}

// closeFiles closes every file the journal holds and releases its lock.
func (j *journal) closeFiles() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, seg := range append(j.live, j.spares...) {
		errs = append(errs, seg.f.Close())
	}
	j.live, j.spares, j.active = nil, nil, nil
	errs = append(errs, j.qlog.close(), j.lock.Close())
	return errors.Join(errs...)
}
