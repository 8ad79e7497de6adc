package mlflow

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// maxKeptBuffer is the largest commit buffer kept between commits; a
// larger one (a huge record) is dropped, so that memory stays small.
const maxKeptBuffer = 1 << 20

// zeros is what a new segment is filled with.
var zeros = make([]byte, 64<<10)

// commit is the committer: it takes the first waiting request and every
// other one already waiting, up to maxGroup frames, commits them together
// and tells each the outcome, until close closes requests.
func (j *journal) commit() {
	defer close(j.committed)
	group := make([]*request, 0, 64)
	for first := range j.requests {
		group = append(group[:0], first)
		n := len(first.frames)
	more:
		for n < maxGroup {
			select {
			case r, ok := <-j.requests:
				if !ok {
					break more
				}
				group = append(group, r)
				n += len(r.frames)
			default:
				break more
			}
		}
		// The settlements noted since the last commit ride on this one.
		settled := j.takeSettled()
		if settled != nil {
			settled.done = make(chan error, 1)
			group = append(group, settled)
		}
		j.commitGroup(group)
		if settled != nil {
			j.settled(settled, <-settled.done)
		}
		clear(group) // drop the values until the next group
		if cap(j.buf) > maxKeptBuffer {
			j.buf = nil
		}
	}
}

// commitGroup writes the group's frames into the active segment with one
// pwrite and syncs it once. A request that does not fit in the rest of the
// segment first commits what came before it, then starts the next segment.
// After a failed write or sync the segment is abandoned: what the disk
// holds after a failed fdatasync is unknown, so nothing more is written
// into it.
func (j *journal) commitGroup(group []*request) {
	if err := j.injected(); err != nil {
		fail(group, err)
		return
	}
	j.buf = j.buf[:0]
	from := 0 // group[from:i] are in j.buf
	for i, r := range group {
		need := int64(0)
		for _, f := range r.frames {
			need += frameHeaderSize + int64(len(f.payload))
		}
		if j.active == nil || j.active.end+int64(len(j.buf))+need > j.active.size {
			if err := j.flush(group[from:i]); err != nil {
				fail(group[i:], err)
				return
			}
			from = i
			if err := j.rollover(need); err != nil {
				fail(group[i:], err)
				return
			}
		}
		for k := range r.frames {
			f := &r.frames[k]
			f.seq = j.nextSeq
			j.nextSeq++
			off := j.active.end + int64(len(j.buf))
			j.buf = appendFrame(j.buf, j.active.id, *f)
			switch f.kind {
			case kindRecord:
				r.placed = append(r.placed, indexed{seq: f.seq, at: f.at, seg: j.active, segID: j.active.id, off: off, n: uint32(len(f.payload))})
			case kindOwes: // marks the record placed just before it
				r.placed[len(r.placed)-1].owed = true
			}
		}
	}
	_ = j.flush(group[from:])
}

// flush writes j.buf at the active segment's end, syncs it, indexes the
// records of done and tells each request the outcome.
func (j *journal) flush(done []*request) error {
	if len(j.buf) == 0 {
		return nil
	}
	seg := j.active
	start := time.Now()
	_, err := seg.f.WriteAt(j.buf, seg.end)
	if err == nil {
		err = datasync(seg.f)
		j.syncs.Add(1)
		j.syncTime.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		err = fmt.Errorf("call log journal %s: %w", seg.name, err)
		j.mu.Lock()
		j.active = nil
		j.advance()
		j.mu.Unlock()
		j.buf = j.buf[:0]
		fail(done, err)
		return err
	}
	seg.end += int64(len(j.buf))
	j.buf = j.buf[:0]
	j.mu.Lock()
	added := 0
	for _, r := range done {
		for _, p := range r.placed {
			j.records = append(j.records, p)
			added++
		}
	}
	seg.live += added
	j.pending.Add(int64(added))
	// Settlements are marked before anyone hears of the commit, so that a
	// caller that waited for a commit sees what it carried.
	for _, r := range done {
		if len(r.frames) == 1 && r.frames[0].kind == kindSettled {
			j.markSettled(r.frames[0].payload)
		}
	}
	j.mu.Unlock()
	for _, r := range done {
		r.done <- nil
	}
	return nil
}

// rollover makes a segment with room for need bytes of frames the active
// one: a spare, or a new file when none is left or need is too large.
// Its header goes first into the buffer, so the first commit writes it.
func (j *journal) rollover(need int64) error {
	size := max(j.segmentSize, segmentHeaderSize+need)
	var seg *segment
	j.mu.Lock()
	if size == j.segmentSize && len(j.spares) > 0 {
		seg = j.spares[len(j.spares)-1]
		j.spares = j.spares[:len(j.spares)-1]
	}
	j.mu.Unlock()
	if seg == nil {
		var err error
		if seg, err = j.createSegment(size); err != nil {
			return err
		}
	}
	j.mu.Lock()
	seg.id, seg.end, seg.live = j.nextSegID, 0, 0
	j.nextSegID++
	j.active = seg
	j.live = append(j.live, seg)
	j.advance() // the segment that was active may be delivered already
	j.mu.Unlock()
	j.buf = appendSegmentHeader(j.buf, seg.id, j.nextSeq)
	select {
	case j.prepare <- struct{}{}:
	default:
	}
	return nil
}

// prepareSpares is the preparer: after each rollover it makes sure a spare
// segment is ready, so that the committer seldom has to fill one itself.
func (j *journal) prepareSpares() {
	defer close(j.prepared)
	for {
		select {
		case <-j.stopPrep:
			return
		case <-j.prepare:
		}
		j.mu.Lock()
		needed := len(j.spares) == 0
		j.mu.Unlock()
		if !needed {
			continue
		}
		// On failure the committer tries again when it needs the segment,
		// and reports the error to the appends waiting for it.
		if seg, err := j.createSegment(j.segmentSize); err == nil {
			j.mu.Lock()
			j.spares = append(j.spares, seg)
			j.mu.Unlock()
		}
	}
}

// createSegment creates a segment file of size bytes, filled with zeros
// and durable (file and directory entry) before it is used.
func (j *journal) createSegment(size int64) (*segment, error) {
	j.mu.Lock()
	n := j.nextFile
	j.nextFile++
	j.mu.Unlock()
	name := filepath.Join(j.dir, fmt.Sprintf("%016x%s", n, segmentSuffix))
	tmp := name + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create a journal segment: %w", err)
	}
	err = fill(f, size)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		_ = os.Remove(name)
		return nil, fmt.Errorf("create a journal segment: %w", err)
	}
	return &segment{f: f, name: name, size: size}, nil
}

// fill writes size zero bytes into f.
func fill(f *os.File, size int64) error {
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// fail tells each request of group that its commit failed.
func fail(group []*request, err error) {
	for _, r := range group {
		r.done <- err
	}
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
