package memory_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

func TestKeyStoreContract(t *testing.T) {
	contract.TestKeyStore(t, func(*testing.T) contract.KeyStoreUnderTest {
		s := memory.NewKeyStore()
		return contract.KeyStoreUnderTest{
			Store: s,
			Add: func(_ context.Context, secret string, c domain.Caller) (string, error) {
				c.KeyID = ""
				return s.Add(secret, c), nil
			},
			Revoke: func(_ context.Context, id string) error { return s.Revoke(id) },
			Rotate: func(_ context.Context, id string, grace time.Duration) (string, error) { return s.Rotate(id, grace) },
		}
	})
}

func TestSpendLedgerContract(t *testing.T) {
	contract.TestSpendLedger(t, func(_ *testing.T, setup contract.LedgerSetup) (contract.Ledger, contract.Ledger) {
		l := memory.NewLedgerWith(memory.LedgerOptions{Location: setup.Location, AlertThresholds: setup.AlertThresholds})
		return l, l
	})
}

// TestLedgerEndings checks that the ledger reports every settlement and
// release of each reservation, repeats included, so that a test can prove a
// reservation was ended exactly once.
func TestLedgerEndings(t *testing.T) {
	ctx := context.Background()
	l := memory.NewLedger()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"settled", "released", "held"} {
		if err := l.Reserve(ctx, domain.Reservation{ID: id, Amount: 50, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := l.Settle(ctx, ports.Settlement{ReservationID: "settled", Cost: 30, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Release(ctx, "released"); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "settled"); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "unknown"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("releasing an unknown reservation: %v, want not found", err)
	}
	want := map[string]memory.Ending{
		"settled":  {Amount: 50, Settles: 2, Releases: 1, Cost: 30},
		"released": {Amount: 50, Releases: 1},
		"held":     {Amount: 50, Held: true},
	}
	if got := l.Endings(); !maps.Equal(got, want) {
		t.Fatalf("endings %+v, want %+v", got, want)
	}
}

// TestKeyStoreKeepsItsOwnCopy checks that changing a caller after Add, or
// the caller a lookup returned, does not change the stored key.
func TestKeyStoreKeepsItsOwnCopy(t *testing.T) {
	s := memory.NewKeyStore()
	c := domain.Caller{KeyID: "k1", User: "u", Team: "t", AllowedModels: []string{"m"},
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "u", Period: domain.PeriodDay, Limit: 5}}}
	if id := s.Add("tg-secret", c); id != "k1" {
		t.Fatalf("Add returned ID %q, want the caller's k1", id)
	}
	c.AllowedModels[0], c.Budgets[0].Limit = "changed", 1
	got, err := s.CallerByKeyHash(context.Background(), domain.HashKey("tg-secret"))
	if err != nil {
		t.Fatal(err)
	}
	got.AllowedModels[0] = "changed too"
	again, _ := s.CallerByKeyHash(context.Background(), domain.HashKey("tg-secret"))
	if again.AllowedModels[0] != "m" || again.Budgets[0].Limit != 5 {
		t.Errorf("stored caller changed: %+v", again)
	}
}

func TestCallLog(t *testing.T) {
	l := memory.NewCallLog()
	release, err := l.Admit()
	if err != nil {
		t.Fatalf("Admit of a new log: %v", err)
	}
	if l.Held() != 1 {
		t.Fatalf("Held after Admit = %d, want 1", l.Held())
	}
	release()
	release()
	if l.Held() != 0 {
		t.Fatalf("Held after releasing twice = %d, want 0", l.Held())
	}
	full := domain.Errorf(domain.KindUnavailable, "full")
	l.RefuseAdmission(full)
	if _, err := l.Admit(); !errors.Is(err, domain.KindUnavailable) {
		t.Fatalf("Admit after RefuseAdmission = %v, want %v", err, full)
	}
	l.RefuseAdmission(nil)
	if _, err := l.Admit(); err != nil {
		t.Fatalf("Admit after RefuseAdmission(nil): %v", err)
	}

	for _, id := range []string{"a", "b", "a"} {
		if err := l.Record(context.Background(), domain.CallRecord{RequestID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got := l.Records()
	if len(got) != 3 || got[0].RequestID != "a" || got[1].RequestID != "b" || got[2].RequestID != "a" {
		t.Fatalf("records = %+v, want a, b, a in order", got)
	}
	got[0].RequestID = "changed"
	if l.Records()[0].RequestID != "a" {
		t.Error("changing the returned records changed the log")
	}
}

func TestCallLogContract(t *testing.T) {
	contract.TestCallLog(t, func(*testing.T) contract.CallLogUnderTest {
		l := memory.NewCallLog()
		var under contract.CallLogUnderTest
		under = contract.CallLogUnderTest{Log: l, Delivered: func(context.Context) ([]string, error) {
			var ids []string
			for _, r := range l.Records() {
				ids = append(ids, r.RequestID)
			}
			return ids, nil
		}, Reopen: func(*testing.T) contract.CallLogUnderTest { return under }}
		return under
	})
}

func TestResponseStoreContract(t *testing.T) {
	contract.TestResponseStore(t, func(*testing.T) ports.ResponseStore { return memory.NewResponseStore() })
}
