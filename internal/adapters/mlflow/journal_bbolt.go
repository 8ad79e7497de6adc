package mlflow

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltJournalFile is the journal of releases before the segment files: a
// bbolt file with a "pending" and a "quarantine" bucket, keyed by a
// sequence number and the time the record was journaled (8 bytes each,
// big-endian).
const boltJournalFile = "calllog.db"

// migrateChunk bounds the records moved in one commit.
const migrateChunk = 1000

// migrateBolt moves the records of an earlier release's journal in the
// directory into this one, keeping the time each was journaled, and then
// deletes the old file: its pending records are committed as records, its
// quarantined ones added to the quarantine file. A crash before the
// deletion moves them again at the next start; the duplicates are
// delivered once, since MLflow's rows are keyed on the request id.
func (j *journal) migrateBolt() error {
	path := filepath.Join(j.dir, boltJournalFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("the previous release's journal %s is locked by another process (is another tidygate using MLFLOW_JOURNAL_DIR=%s?)", path, j.dir)
	}
	if err != nil {
		return fmt.Errorf("the previous release's journal %s: %w", path, err)
	}
	err = j.migrateBucket(db, []byte("pending"), func(chunk []entry) error {
		frames := make([]frame, len(chunk))
		for i, e := range chunk {
			at := keyTime(e.key)
			if at == 0 { // not a key of that release's
				at = time.Now().UnixNano()
			}
			frames[i] = frame{kind: kindRecord, at: at, payload: e.value}
		}
		j.recovered.migrated += len(chunk)
		return j.submit(&request{frames: frames})
	})
	if err == nil {
		err = j.migrateBucket(db, []byte("quarantine"), func(chunk []entry) error {
			for _, e := range chunk {
				if err := j.qlog.add(e); err != nil {
					return err
				}
			}
			j.recovered.migratedQuarantined += len(chunk)
			return nil
		})
	}
	err = errors.Join(err, db.Close())
	if err == nil {
		err = os.Remove(path)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		return fmt.Errorf("moving the records of the previous release's journal %s: %w", path, err)
	}
	return nil
}

// migrateBucket hands the bucket's records to move, a chunk at a time, in
// key order; a missing bucket has none.
func (j *journal) migrateBucket(db *bolt.DB, bucket []byte, move func([]entry) error) error {
	var after []byte
	for {
		var chunk []entry
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(chunk) < migrateChunk; k, v = c.Next() {
				// bolt's slices are valid only inside the transaction.
				chunk = append(chunk, entry{key: bytes.Clone(k), value: bytes.Clone(v)})
			}
			return nil
		})
		if err != nil || len(chunk) == 0 {
			return err
		}
		after = chunk[len(chunk)-1].key
		if err := move(chunk); err != nil {
			return err
		}
	}
}
