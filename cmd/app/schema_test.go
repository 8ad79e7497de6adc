package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestKeyLookupsWaitForTheSchema: until the gateway's migrations have been
// applied, a key lookup is "unavailable" (503, retry), not the store's own
// failure (a missing table, answered 500); once they are, lookups reach the
// store.
func TestKeyLookupsWaitForTheSchema(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	fail := true
	gate := newSchemaGate(slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) error {
		if fail {
			return down
		}
		return nil
	})
	store := memory.NewKeyStore()
	caller := domain.Caller{KeyID: "key_1", User: "alice", Team: "risk"}
	store.Add("secret", caller)
	keys := gatedKeys{KeyStore: store, gate: gate}

	if err := gate.join(context.Background()); err == nil {
		t.Fatal("join succeeded with the database down")
	}
	_, err := keys.CallerByKeyHash(context.Background(), domain.HashKey("secret"))
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("before the schema: %v, want an unavailable error", err)
	}

	fail = false
	if err := gate.join(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := keys.CallerByKeyHash(context.Background(), domain.HashKey("secret"))
	if err != nil || got.User != caller.User {
		t.Fatalf("after the schema: %+v, %v", got, err)
	}
}
