package gateway_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// stageSpy keeps the stages it is told of, in order, and how long each
// took.
type stageSpy struct {
	mu     sync.Mutex
	stages []string
	took   []time.Duration
}

func (s *stageSpy) ObserveStage(st gateway.Stage, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stages = append(s.stages, st.String())
	s.took = append(s.took, d)
}

func (s *stageSpy) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stages)
}

// tookAt returns how long the i-th stage it was told of took.
func (s *stageSpy) tookAt(i int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.took[i]
}

// TestEachStageOfACallIsTimedOnce checks that an answered call reports its
// reservation and its provider attempt (in that order when it reserves
// first; in either when it reserves alongside), then its record, and its
// settlement once applied, and that a refused call reports only its record.
func TestEachStageOfACallIsTimedOnce(t *testing.T) {
	for _, first := range []bool{false, true} {
		spy := &stageSpy{}
		p := &scriptedProvider{}
		ledger := memory.NewLedger()
		svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
			Providers: map[string]ports.Provider{"primary": p, "backup": p},
			Keys:      memory.NewKeyStore(), Ledger: ledger, CallLog: memory.NewCallLog()}, gateway.Options{Stages: spy, ReserveFirst: first})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main")); err != nil {
			t.Fatal(err)
		}
		if v := seen(t, svc, ledger); !slices.Equal(v.settled, []string{"r1"}) {
			t.Fatalf("settled %q; want r1", v.settled)
		}
		got, want := spy.seen(), []string{"reserve", "upstream", "record", "settle"}
		if !first && len(got) == len(want) {
			slices.Sort(got[:2]) // reserved alongside the provider: either may end first
		}
		if !slices.Equal(got, want) {
			t.Fatalf("reserve first %v: stages %q; want %q", first, got, want)
		}
		if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r2", Caller: alice}, chat("main")); err == nil {
			t.Fatal("a call without an audit reason was answered")
		}
		if got, want := spy.seen()[4:], []string{"record"}; !slices.Equal(got, want) {
			t.Fatalf("a refused call's stages %q; want %q", got, want)
		}
	}
}

// TestTheWaitForAReservationToBeSentIsTimed checks that a call reserving
// alongside its provider, with a ledger that says when a reservation is
// sent, reports the provider's wait for the sending as reserve_send, once
// and before its provider attempt, and that a call reserving first
// reports none.
func TestTheWaitForAReservationToBeSentIsTimed(t *testing.T) {
	const held = 30 * time.Millisecond // how long the ledger keeps the reservation from being sent
	for _, first := range []bool{false, true} {
		spy := &stageSpy{}
		send := make(chan struct{})
		r := newAlongsideRig(t, gateway.Options{Stages: spy, ReserveFirst: first}, func(l *heldLedger) ports.SpendLedger {
			return &sendingLedger{heldLedger: l, send: send}
		})
		time.AfterFunc(held, func() { close(send) })
		a := <-r.chatAsync(alice, "r1")
		if a.err != nil {
			t.Fatal(a.err)
		}
		if v := seen(t, r.svc, r.ledger.Ledger); len(v.settled) != 1 {
			t.Fatalf("reserve first %v: settled %q; want r1", first, v.settled)
		}
		got := spy.seen()
		sending := slices.Index(got, "reserve_send")
		if first {
			if sending >= 0 {
				t.Fatalf("reserve first: stages %q; want no reserve_send", got)
			}
			continue
		}
		if sending < 0 || slices.Index(got[sending+1:], "reserve_send") >= 0 || slices.Index(got, "upstream") < sending {
			t.Fatalf("alongside: stages %q; want reserve_send once, before upstream", got)
		}
		if took := spy.tookAt(sending); took < held {
			t.Fatalf("alongside: reserve_send took %v; the provider waited %v for the sending", took, held)
		}
	}
}
