package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestDBErrorKinds(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want domain.Kind
	}{
		{"classified already", domain.Errorf(domain.KindNotFound, "gone"), domain.KindNotFound},
		{"acquire deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), domain.KindUnavailable},
		{"canceled", context.Canceled, domain.KindUnavailable},
		{"network", opErr, domain.KindUnavailable},
		{"connection closed", io.ErrUnexpectedEOF, domain.KindUnavailable},
		{"connection exception", &pgconn.PgError{Code: "08006"}, domain.KindUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, domain.KindUnavailable},
		{"too many clients", &pgconn.PgError{Code: "53300"}, domain.KindUnavailable},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, domain.KindUnavailable},
		{"unique violation", &pgconn.PgError{Code: "23505"}, domain.KindInvalid},
		{"bad encoding", &pgconn.PgError{Code: "22021"}, domain.KindInvalid},
		{"syntax error", &pgconn.PgError{Code: "42601"}, domain.KindInternal},
		{"no rows", pgx.ErrNoRows, domain.KindInternal},
		{"anything else", errors.New("boom"), domain.KindInternal},
	} {
		err := dbError(tc.err, "test")
		if got := domain.KindOf(err); got != tc.want {
			t.Errorf("%s: kind = %v, want %v (%v)", tc.name, got, tc.want, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v lost its cause", tc.name, err)
		}
		var de *domain.Error
		if errors.As(err, &de) && de.Kind == domain.KindUnavailable && de.RetryAfter != time.Second {
			t.Errorf("%s: RetryAfter = %v, want 1s", tc.name, de.RetryAfter)
		}
	}
	if dbError(nil, "test") != nil {
		t.Error("dbError(nil) is not nil")
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %+v, want version 1 first", ms)
	}
}

func TestLoadMigrationsOrdersAndRefuses(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/0010_later.sql": file("B"), "migrations/0002_first.sql": file("A"), "migrations/README": file("x"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].version != 2 || ms[0].sql != "A" || ms[1].version != 10 || ms[1].name != "0010_later.sql" {
		t.Errorf("migrations = %+v, want 0002 then 0010", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version":     {"migrations/first.sql": file("A")},
		"zero version":   {"migrations/0000_zero.sql": file("A")},
		"shared version": {"migrations/0001_a.sql": file("A"), "migrations/1_b.sql": file("B")},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}
