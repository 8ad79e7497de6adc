package mlflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const (
	journalFile = "calllog.db"

	// maxGroup is the most appends one commit takes.
	maxGroup = 1000
)

var (
	pendingBucket    = []byte("pending")    // records not yet in PostgreSQL, in arrival order
	quarantineBucket = []byte("quarantine") // records PostgreSQL refused for their content; kept, never retried
	probeBucket      = []byte("probe")      // one key, rewritten to check that the journal takes writes
)

// journal is the durable queue between Record and the writer: a bbolt file
// with one bucket of pending records. A key is the bucket's sequence number
// followed by the time the record was journaled (8 bytes each, big-endian),
// so keys sort in arrival order and the oldest record's age needs no decoding.
//
// Appends are group-committed by one goroutine, the committer: it commits
// whatever appends are waiting in one transaction (one fsync), and while
// that commit runs the next appends queue up for the next one. A lone
// append is committed at once, with no timer to wait for others.
type journal struct {
	db      *bolt.DB
	path    string
	pending atomic.Int64 // the number of keys in the pending bucket

	appends   chan appendRequest // to the committer; closed by close
	committed chan struct{}      // closed when the committer has stopped
	closeOnce sync.Once
	closeErr  error

	// fault, when set, fails every append and probe with its error before
	// anything is written: tests inject a full disk with it.
	fault atomic.Pointer[error]
}

// appendRequest is one record waiting for the committer.
type appendRequest struct {
	value []byte
	at    time.Time
	done  chan error // receives the commit's outcome
}

// entry is one journaled record: its key and its encoded value.
type entry struct {
	key   []byte
	value []byte
}

func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("call log journal: %w", err)
	}
	path := filepath.Join(dir, journalFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("call log journal %s is locked by another process (is another tidygate using MLFLOW_JOURNAL_DIR=%s?)", path, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("call log journal %s: %w", path, err)
	}
	j := &journal{db: db, path: path, appends: make(chan appendRequest), committed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(quarantineBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(probeBucket); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(pendingBucket)
		if err != nil {
			return err
		}
		j.pending.Store(int64(b.Stats().KeyN))
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("call log journal %s: %w", path, err), db.Close())
	}
	go j.commit()
	return j, nil
}

// append commits value to the pending bucket, sharing the commit (and its
// fsync) with concurrent appends, and returns the number of pending records.
// It must not be called after close.
func (j *journal) append(value []byte) (int, error) {
	req := appendRequest{value: value, at: time.Now(), done: make(chan error, 1)}
	j.appends <- req
	if err := <-req.done; err != nil {
		return 0, err
	}
	return j.len(), nil
}

// commit is the committer: it takes the first waiting append and every
// other one already waiting, up to maxGroup, commits them together and
// tells each the outcome, until close closes appends.
func (j *journal) commit() {
	defer close(j.committed)
	group := make([]appendRequest, 0, maxGroup)
	for first := range j.appends {
		group = append(group[:0], first)
	more:
		for len(group) < maxGroup {
			select {
			case req, ok := <-j.appends:
				if !ok {
					break more
				}
				group = append(group, req)
			default:
				break more
			}
		}
		err := j.db.Update(func(tx *bolt.Tx) error {
			if err := j.injected(); err != nil {
				return err
			}
			b := tx.Bucket(pendingBucket)
			for _, req := range group {
				seq, err := b.NextSequence()
				if err != nil {
					return err
				}
				key := make([]byte, 16)
				binary.BigEndian.PutUint64(key, seq)
				binary.BigEndian.PutUint64(key[8:], uint64(req.at.UnixNano()))
				if err := b.Put(key, req.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			j.pending.Add(int64(len(group)))
		}
		for _, req := range group {
			req.done <- err
		}
		clear(group) // drop the values until the next group
	}
}

// probe commits a small write (the time, under one key of its own bucket)
// and returns its error: whether the journal takes writes now.
func (j *journal) probe() error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if err := j.injected(); err != nil {
			return err
		}
		at := make([]byte, 8)
		binary.BigEndian.PutUint64(at, uint64(time.Now().UnixNano()))
		return tx.Bucket(probeBucket).Put([]byte("last"), at)
	})
}

// injected returns the fault a test injected, if any.
func (j *journal) injected() error {
	if err := j.fault.Load(); err != nil {
		return *err
	}
	return nil
}

// read returns the oldest pending records: up to limit of them, and no
// more once their values add up to maxBytes (but at least one).
func (j *journal) read(limit, maxBytes int) ([]entry, error) {
	var out []entry
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(pendingBucket).Cursor()
		size := 0
		for k, v := c.First(); k != nil && len(out) < limit && size < maxBytes; k, v = c.Next() {
			size += len(v)
			// bolt's slices are valid only inside the transaction.
			out = append(out, entry{key: append([]byte(nil), k...), value: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// remove deletes delivered records from the pending bucket.
func (j *journal) remove(entries []entry) error {
	if len(entries) == 0 {
		return nil
	}
	var removed int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		b := tx.Bucket(pendingBucket)
		for _, e := range entries {
			if b.Get(e.key) == nil {
				continue
			}
			if err := b.Delete(e.key); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err == nil {
		j.pending.Add(-removed)
	}
	return err
}

// quarantine moves a record PostgreSQL refuses for its content out of the
// pending bucket, so that it no longer blocks the records behind it.
func (j *journal) quarantine(e entry) error {
	removed := false
	err := j.db.Update(func(tx *bolt.Tx) error {
		removed = false
		p := tx.Bucket(pendingBucket)
		if p.Get(e.key) == nil {
			return nil
		}
		if err := tx.Bucket(quarantineBucket).Put(e.key, e.value); err != nil {
			return err
		}
		removed = true
		return p.Delete(e.key)
	})
	if err == nil && removed {
		j.pending.Add(-1)
	}
	return err
}

// len returns the number of pending records.
func (j *journal) len() int { return int(j.pending.Load()) }

// quarantined returns the number of records set aside.
func (j *journal) quarantined() (int, error) {
	n := 0
	err := j.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(quarantineBucket).Stats().KeyN
		return nil
	})
	return n, err
}

// oldest returns when the oldest pending record was journaled; ok is false
// when nothing is pending.
func (j *journal) oldest() (at time.Time, ok bool) {
	_ = j.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(pendingBucket).Cursor().First()
		if len(k) == 16 {
			at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k[8:]))), true
		}
		return nil
	})
	return at, ok
}

// close stops the committer and closes the file; appends must have returned.
func (j *journal) close() error {
	j.closeOnce.Do(func() {
		close(j.appends)
		<-j.committed
		j.closeErr = j.db.Close()
	})
	return j.closeErr
}
