package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/domain"
)

// noDatabase refuses every connection: the call log journals records only.
type noDatabase struct{}

func (noDatabase) Acquire(context.Context) (*pgxpool.Conn, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "database unavailable")
}

// TestReadyzIsUnavailableWhileTheCallLogIsFull holds the only slot of a
// journal of one record: /readyz answers 503, and says why on the admin
// address, until the slot is given back.
func TestReadyzIsUnavailableWhileTheCallLogIsFull(t *testing.T) {
	l, err := mlflow.Open(context.Background(), noDatabase{}, mlflow.Options{
		Schema: mlflow.SchemaVerify, LogMode: mlflow.LogTraces, Content: mlflow.ContentFull,
		JournalDir: t.TempDir(), JournalMaxRecords: 1, RefuseWhenFull: true, BatchSize: 10, FlushInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ready"}`)) })
	readyz := func(detail bool) (int, string) {
		rec := httptest.NewRecorder()
		(&callLog{CallLog: l}).guard(ok, detail).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := readyz(true); code != http.StatusOK {
		t.Fatalf("/readyz with room: %d %s", code, body)
	}
	release, err := l.Admit()
	if err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(false); code != http.StatusServiceUnavailable || strings.Contains(body, "journal") {
		t.Errorf("API /readyz while full: %d %s, want 503 with the verdict only", code, body)
	}
	if code, body := readyz(true); code != http.StatusServiceUnavailable || !strings.Contains(body, "call log journal is full") {
		t.Errorf("admin /readyz while full: %d %s, want 503 naming the full journal", code, body)
	}
	release()
	if code, body := readyz(true); code != http.StatusOK {
		t.Errorf("/readyz once the slot is back: %d %s", code, body)
	}
}
