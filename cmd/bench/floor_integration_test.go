//go:build integration

package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestFloorRecordWithTheCallLogDeliversEachCall checks that the composed
// floor with -calllog-dsn records each call as one MLflow trace, delivered
// by the time the record is closed.
func TestFloorRecordWithTheCallLogDeliversEachCall(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.New(t)
	record, closeRecord, err := floorRecord(ctx, t.TempDir(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	const calls = 3
	for range calls {
		if err := record(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := closeRecord(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var traces int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM trace_info").Scan(&traces); err != nil {
		t.Fatal(err)
	}
	if traces != calls {
		t.Errorf("%d traces for %d calls", traces, calls)
	}
}
