package mlflow

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	lockFile      = "journal.lock"
	identityFile  = "journal.id"
	segmentSuffix = ".seg"
	tmpSuffix     = ".tmp"
)

// recovery is what opening the journal found besides its records.
type recovery struct {
	// damaged are the ranges of segments that held no valid frame between
	// valid ones; the frames after each were kept.
	damaged []damage
	// torn names the segments whose last write did not finish; its tail was
	// cut off.
	torn []string
	// migrated and migratedQuarantined count the records moved from an
	// earlier release's bbolt journal.
	migrated, migratedQuarantined int
}

// damage is one damaged range of a segment.
type damage struct {
	segment string
	off, n  int64
	saved   string // the file its bytes were copied to, for inspection
	err     error  // why they could not be copied
}

// lockDir takes the journal directory's lock, waiting up to a second for
// a process that is stopping.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("call log journal: %w", err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		err := flock(f)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("call log journal %s is locked by another process (is another tidygate using MLFLOW_JOURNAL_DIR=%s?)", dir, dir)
			}
			return nil, fmt.Errorf("call log journal %s: lock: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// journalIdentity returns the identity of the journal in dir, the
// ledger's name for it on the reservations its process takes
// (domain.Holder.Log), so it must outlive every restart on dir: read from
// identityFile, or made (128 random bits) and made durable there, before
// any reservation names it, when the journal has none yet. The caller
// holds the directory's lock.
func journalIdentity(dir string) (string, error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("call log journal identity: %w", err)
	}
	id := rand.Text()
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.WriteString(id + "\n")
		err = errors.Join(err, f.Sync(), f.Close())
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return "", fmt.Errorf("call log journal identity: %w", err)
	}
	return id, nil
}

// loaded is a segment read at open, with what its frames say.
type loaded struct {
	seg      *segment
	firstSeq uint64
	records  []indexed
	end      int64
}

// load reads the quarantine log and every segment, and rebuilds the index
// of pending records (every record frame that no kindDelivered frame
// names) and owed ones (every record a kindOwes frame follows and no
// kindSettled frame names).
func (j *journal) load() (err error) {
	if err := j.qlog.open(j.dir); err != nil {
		return err
	}
	names, err := os.ReadDir(j.dir)
	if err != nil {
		return err
	}
	var (
		segs      []loaded
		delivered = map[uint64]bool{}
		owes      = map[uint64]bool{}
		settled   = map[uint64]bool{}
		data      []byte
		lastSeq   uint64
	)
	defer func() {
		if err != nil { // the spares are closed by closeFiles
			for _, l := range segs {
				_ = l.seg.f.Close()
			}
		}
	}()
	for _, d := range names {
		name := filepath.Join(j.dir, d.Name())
		if strings.HasSuffix(d.Name(), tmpSuffix) {
			_ = os.Remove(name) // a segment whose preallocation did not finish
			continue
		}
		base, ok := strings.CutSuffix(d.Name(), segmentSuffix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(base, 16, 64); err == nil {
			j.nextFile = max(j.nextFile, n+1)
		}
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		seg := &segment{f: f, name: name}
		if data, err = readAll(f, data); err != nil {
			_ = f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		seg.size = int64(len(data))
		id, firstSeq, ok := decodeSegmentHeader(data)
		if !ok || firstSeq == 0 {
			j.recycle(seg) // a spare, or a header that never reached the disk
			continue
		}
		seg.id = id
		j.nextSegID = max(j.nextSegID, id+1)
		lastSeq = max(lastSeq, firstSeq-1)
		s := scanSegment(data, id, firstSeq)
		l := loaded{seg: seg, firstSeq: firstSeq, end: s.end}
		for _, f := range s.frames {
			lastSeq = max(lastSeq, f.seq)
			switch f.kind {
			case kindRecord:
				l.records = append(l.records, indexed{seq: f.seq, at: f.at, seg: seg, segID: id, off: f.off, n: uint32(len(f.payload))})
			case kindOwes:
				owes[f.seq-1] = true
			case kindDelivered:
				for _, seq := range decodeSeqs(f.payload) {
					delivered[seq] = true
				}
			case kindSettled:
				for _, seq := range decodeSeqs(f.payload) {
					settled[seq] = true
				}
			}
		}
		for _, d := range s.damaged {
			j.recovered.damaged = append(j.recovered.damaged, j.keepDamaged(seg.name, data, d))
		}
		if s.torn {
			j.recovered.torn = append(j.recovered.torn, seg.name)
		}
		segs = append(segs, l)
	}
	j.nextSeq = lastSeq + 1
	slices.SortFunc(segs, func(a, b loaded) int { return cmp.Compare(a.seg.id, b.seg.id) })
	pending := 0
	for _, l := range segs {
		for _, r := range l.records {
			r.done, r.owed = delivered[r.seq], owes[r.seq] && !settled[r.seq]
			if !r.done || r.owed {
				j.records = append(j.records, r)
				l.seg.live++
			}
			if !r.done {
				pending++
			}
		}
		l.seg.end = l.end
		j.live = append(j.live, l.seg)
	}
	slices.SortFunc(j.records, func(a, b indexed) int { return cmp.Compare(a.seq, b.seq) })
	j.pending.Store(int64(pending))
	if n := len(j.live); n > 0 {
		j.active = j.live[n-1] // appends continue after its last frame, over a torn tail
	}
	j.advance()
	return nil
}

// keepDamaged copies a damaged range's bytes to a file of their own beside
// the segments, so that they outlive the segment's recycling.
func (j *journal) keepDamaged(segName string, data []byte, s span) damage {
	d := damage{segment: segName, off: s.from, n: s.to - s.from}
	d.saved = filepath.Join(j.dir, fmt.Sprintf("damaged-%s-%d.bin", filepath.Base(segName), s.from))
	f, err := os.OpenFile(d.saved, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(data[s.from:s.to])
		err = errors.Join(err, f.Sync(), f.Close())
	}
	if err != nil {
		d.saved, d.err = "", err
	}
	return d
}

// readAll reads the whole of f into buf's memory, growing it as needed.
func readAll(f *os.File, buf []byte) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return buf, err
	}
	size := int(info.Size())
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return buf, err
	}
	return buf, nil
}

// reportRecovery logs what opening the journal found besides its records.
func reportRecovery(log *slog.Logger, j *journal) {
	r := j.recovered
	for _, d := range r.damaged {
		log.Error("call log journal: a damaged range between records was skipped; the records after it are kept, any record inside it is lost",
			"segment", d.segment, "offset", d.off, "bytes", d.n, "copied_to", d.saved, "copy_error", d.err)
	}
	for _, name := range r.torn {
		log.Warn("call log journal: the last write before the stop did not finish; its unacknowledged tail was cut off", "segment", name)
	}
	if r.migrated > 0 || r.migratedQuarantined > 0 {
		log.Info("call log journal: moved the records of the previous release's journal ("+boltJournalFile+") and deleted it",
			"records", r.migrated, "quarantined", r.migratedQuarantined, "journal", j.path)
	}
}
