package mlflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// quarantineFile holds the records PostgreSQL refused for their content,
// one JSON object a line, so that an operator can read them with any tool
// (jq). They are kept, never retried.
const quarantineFile = "quarantine.jsonl"

// quarantineLog is the journal's quarantine file.
type quarantineLog struct {
	mu sync.Mutex
	f  *os.File
	n  int
}

// quarantineLine is one line of the quarantine file: the record as journaled
// (its JSON, or its bytes in base64 when they are not JSON).
type quarantineLine struct {
	Seq         uint64          `json:"seq"`
	JournaledAt time.Time       `json:"journaled_at"`
	Record      json.RawMessage `json:"record,omitempty"`
	Raw         []byte          `json:"raw,omitempty"`
}

// open opens (or creates) the quarantine file in dir, cuts off a last line
// whose write did not finish, and counts the lines.
func (q *quarantineLog) open(dir string) error {
	path := filepath.Join(dir, quarantineFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	data, err := readAll(f, nil)
	if err == nil {
		if whole := bytes.LastIndexByte(data, '\n') + 1; whole < len(data) {
			data = data[:whole]
			err = errors.Join(f.Truncate(int64(whole)), f.Sync())
		}
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	q.f, q.n = f, bytes.Count(data, []byte{'\n'})
	return nil
}

// add appends e to the file and syncs it.
func (q *quarantineLog) add(e entry) error {
	line := quarantineLine{Seq: keySeq(e.key)}
	if len(e.key) == 16 {
		line.JournaledAt = time.Unix(0, keyTime(e.key)).UTC()
	}
	if e.damaged == nil && json.Valid(e.value) {
		line.Record = e.value
	} else {
		line.Raw = e.value
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("call log quarantine: %w", err)
	}
	if err := q.f.Sync(); err != nil {
		return fmt.Errorf("call log quarantine: %w", err)
	}
	q.n++
	return nil
}

// count returns the number of records in the file.
func (q *quarantineLog) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func (q *quarantineLog) close() error {
	if q.f == nil {
		return nil
	}
	return q.f.Close()
}

// quarantine sets a record PostgreSQL refuses for its content aside in the
// quarantine file, then marks it delivered, so that it no longer blocks the
// records behind it. A crash between the two leaves it pending, and it is
// set aside again (a second line) after the restart.
func (j *journal) quarantine(e entry) error {
	j.mu.Lock()
	i, ok := j.find(keySeq(e.key))
	ok = ok && !j.records[i].done
	j.mu.Unlock()
	if !ok {
		return nil
	}
	if err := j.qlog.add(e); err != nil {
		return err
	}
	return j.remove([]entry{e})
}

// quarantined returns the number of records set aside.
func (j *journal) quarantined() (int, error) { return j.qlog.count(), nil }
