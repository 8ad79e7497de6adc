package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// AppendSize is the size of the record the fsync probe appends: about one
// call record in a journal.
const AppendSize = 2 << 10

// FsyncProbe appends AppendSize bytes to a file of its own and waits for
// fdatasync: the cost of making one small record durable on the filesystem
// the file is in. Make it in the journal's directory to measure the
// journal's disk.
type FsyncProbe struct {
	f      *os.File
	record []byte
}

// NewFsyncProbe creates the probe's file in dir; Close removes it.
func NewFsyncProbe(dir string) (*FsyncProbe, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return nil, err
	}
	record := make([]byte, AppendSize)
	for i := range record {
		record[i] = byte('a' + i%26)
	}
	return &FsyncProbe{f: f, record: record}, nil
}

// Measure appends one record and waits until the filesystem reports it
// durable; Sample.TTFB and Sample.Total are both that time.
func (p *FsyncProbe) Measure(context.Context) (Sample, error) {
	start := time.Now()
	if _, err := p.f.Write(p.record); err != nil {
		return Sample{}, err
	}
	if err := fdatasync(p.f); err != nil {
		return Sample{}, fmt.Errorf("fdatasync %s: %w", p.f.Name(), err)
	}
	d := time.Since(start)
	return Sample{TTFB: d, Total: d}, nil
}

// Close closes and removes the probe's file.
func (p *FsyncProbe) Close() error {
	return errors.Join(p.f.Close(), os.Remove(p.f.Name()))
}

// select1 is the name the round-trip probe prepares SELECT 1 under.
const select1 = "bench_select_1"

// RoundTripProbe runs a prepared SELECT 1 on one open connection: one
// PostgreSQL round trip, the least a query can cost.
type RoundTripProbe struct{ conn *pgx.Conn }

// NewRoundTripProbe prepares SELECT 1 on conn.
func NewRoundTripProbe(ctx context.Context, conn *pgx.Conn) (*RoundTripProbe, error) {
	if _, err := conn.Prepare(ctx, select1, "SELECT 1"); err != nil {
		return nil, fmt.Errorf("prepare SELECT 1: %w", err)
	}
	return &RoundTripProbe{conn: conn}, nil
}

// Measure runs the prepared statement once and reads its row.
func (p *RoundTripProbe) Measure(ctx context.Context) (Sample, error) {
	start := time.Now()
	var one int
	if err := p.conn.QueryRow(ctx, select1).Scan(&one); err != nil {
		return Sample{}, err
	}
	if one != 1 {
		return Sample{}, fmt.Errorf("SELECT 1 returned %d", one)
	}
	d := time.Since(start)
	return Sample{TTFB: d, Total: d}, nil
}
