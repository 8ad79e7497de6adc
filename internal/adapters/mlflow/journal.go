package mlflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const (
	journalFile = "calllog.db"

	// groupCommitDelay is how long the first record of a group waits for
	// others to share its commit and fsync (bolt's MaxBatchDelay). Record
	// is on the request path, so it is short: on a 2-vCPU test machine
	// (BenchmarkRecord) 250µs gave ~21k records/s from 32 callers, more
	// than 1ms or 0 did, and a lone record took ~1.35ms, mostly fsync.
	groupCommitDelay = 250 * time.Microsecond
)

var (
	pendingBucket    = []byte("pending")    // records not yet in PostgreSQL, in arrival order
	quarantineBucket = []byte("quarantine") // records PostgreSQL refused for their content; kept, never retried
)

// journal is the durable queue between Record and the writer: a bbolt file
// with one bucket of pending records. A key is the bucket's sequence number
// followed by the time the record was journaled (8 bytes each, big-endian),
// so keys sort in arrival order and the oldest record's age needs no decoding.
type journal struct {
	db      *bolt.DB
	path    string
	pending atomic.Int64 // the number of keys in the pending bucket
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
	db.MaxBatchDelay = groupCommitDelay
	j := &journal{db: db, path: path}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(quarantineBucket); err != nil {
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
	return j, nil
}

// append commits value to the pending bucket, sharing the commit (and its
// fsync) with concurrent appends, and returns the number of pending records.
func (j *journal) append(value []byte) (int, error) {
	now := time.Now()
	err := j.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(pendingBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := make([]byte, 16)
		binary.BigEndian.PutUint64(key, seq)
		binary.BigEndian.PutUint64(key[8:], uint64(now.UnixNano()))
		return b.Put(key, value)
	})
	if err != nil {
		return 0, err
	}
	return int(j.pending.Add(1)), nil
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

func (j *journal) close() error { return j.db.Close() }
