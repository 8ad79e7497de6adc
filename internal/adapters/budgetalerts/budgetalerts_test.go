package budgetalerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/budgetalerts"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var noon = time.Date(2030, time.March, 15, 12, 0, 0, 0, time.UTC)

// receiver is a webhook that checks each request's signature, refuses the
// first `refuse` deliveries with a 503, and keeps the bodies it took.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	refuse int
	tries  int
	bad    int
	bodies []budgetalerts.Body
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("read body: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if !budgetalerts.Verify(r.secret, body, req.Header.Get(budgetalerts.SignatureHeader)) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.refuse > 0 {
		r.refuse--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var b budgetalerts.Body
	if err := json.Unmarshal(body, &b); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.bodies = append(r.bodies, b)
}

// spend makes the ledger raise the 50 and 80 percent alerts of a budget of
// 100 micro-dollars.
func spend(t *testing.T, l *memory.Ledger) {
	t.Helper()
	c := domain.Caller{KeyID: "k", User: "ann", Team: "ops",
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "ann", Period: domain.PeriodDay, Limit: 100}}}
	ctx := context.Background()
	if err := l.Reserve(ctx, domain.Reservation{ID: "r1", Budgets: c.Budgets, Amount: 100, At: noon}); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, ports.Settlement{ReservationID: "r1", Caller: c, Model: "gpt", Cost: 85, At: noon}); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookSignedRetriedAndCountedOnce(t *testing.T) {
	secret := []byte("s3cret")
	rcv := &receiver{t: t, secret: secret, refuse: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	l := memory.NewLedgerWith(memory.LedgerOptions{AlertThresholds: []int{50, 80, 100}})
	spend(t, l)

	clock := time.Now()
	counted := map[int]int{}
	d := budgetalerts.New(l, budgetalerts.Options{URL: srv.URL, Secret: secret, Now: func() time.Time { return clock },
		Count: func(a domain.BudgetAlert) { counted[a.Threshold]++ }})
	ctx := context.Background()
	for range 10 { // polls, the clock moving past each retry's backoff
		if err := d.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Hour)
	}
	if rcv.bad != 0 {
		t.Errorf("%d deliveries had a bad signature", rcv.bad)
	}
	if len(rcv.bodies) != 2 || rcv.bodies[0].ThresholdPercent != 50 || rcv.bodies[1].ThresholdPercent != 80 {
		t.Fatalf("the receiver took %+v, want the 50 and 80 percent alerts once each", rcv.bodies)
	}
	b := rcv.bodies[1]
	if b.Scope != "user" || b.ScopeID != "ann" || b.Period != "day" || b.LimitMicros != 100 || b.SpentMicros != 85 || b.ID == 0 {
		t.Errorf("body = %+v", b)
	}
	if rcv.tries != 4 {
		t.Errorf("%d deliveries tried, want 4 (two refused, then one per alert)", rcv.tries)
	}
	if counted[50] != 1 || counted[80] != 1 || len(counted) != 2 {
		t.Errorf("counted %v, want each alert once", counted)
	}
}

// TestRefusalAlertSaysTheBudgetRefusesCalls checks the body of the 100 %
// alert a budget raises by refusing a call short of its limit: spending
// 85 of 100 leaves no room for a call of 20.
func TestRefusalAlertSaysTheBudgetRefusesCalls(t *testing.T) {
	rcv := &receiver{t: t, secret: []byte("s")}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	l := memory.NewLedgerWith(memory.LedgerOptions{AlertThresholds: []int{100}})
	spend(t, l)
	budgets := []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "ann", Period: domain.PeriodDay, Limit: 100}}
	err := l.Reserve(context.Background(), domain.Reservation{ID: "r2", Budgets: budgets, Amount: 20, At: noon})
	if domain.KindOf(err) != domain.KindBudgetExceeded {
		t.Fatalf("Reserve = %v, want budget_exceeded", err)
	}
	d := budgetalerts.New(l, budgetalerts.Options{URL: srv.URL, Secret: rcv.secret})
	if err := d.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rcv.bodies) != 1 {
		t.Fatalf("the receiver took %+v, want one alert", rcv.bodies)
	}
	b := rcv.bodies[0]
	if !b.Refused || b.ThresholdPercent != 100 || b.SpentMicros != 85 || !strings.Contains(b.Message, "refuses calls") {
		t.Errorf("body = %+v, want the 100 %% alert of a refusal at 85 spent", b)
	}
}

func TestWrongSecretIsRefusedByTheReceiver(t *testing.T) {
	rcv := &receiver{t: t, secret: []byte("right")}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	l := memory.NewLedgerWith(memory.LedgerOptions{AlertThresholds: []int{50}})
	spend(t, l)
	d := budgetalerts.New(l, budgetalerts.Options{URL: srv.URL, Secret: []byte("wrong")})
	if err := d.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rcv.bad != 1 || len(rcv.bodies) != 0 {
		t.Fatalf("bad signatures %d, bodies %d; want the one delivery refused", rcv.bad, len(rcv.bodies))
	}
	// Still in the outbox, due after the backoff.
	if got, _ := l.ClaimAlerts(context.Background(), time.Now().Add(2*time.Second), 10, time.Minute); len(got) != 1 || got[0].Attempts != 1 {
		t.Errorf("outbox = %+v, want the alert again after one attempt", got)
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":1}`)
	sig := budgetalerts.Sign([]byte("k"), body)
	// HMAC-SHA256 of {"id":1} under "k", computed with openssl dgst -sha256 -hmac k.
	const want = "sha256=d55075a07b6d07e8b1016ffdb5efd6903196f7da9530cc505c9ba788c070ca96"
	if sig != want {
		t.Fatalf("Sign = %q, want %q", sig, want)
	}
	if !budgetalerts.Verify([]byte("k"), body, sig) || budgetalerts.Verify([]byte("k"), []byte(`{"id":2}`), sig) {
		t.Error("Verify does not tell the body's signature from another's")
	}
}
