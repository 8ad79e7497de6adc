package gateway_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestReloadKeepsCallsInFlightOnTheirCatalogue holds a call on deployment
// a, swaps in a catalogue where m is served by pb alone under another
// upstream name, and checks that the held call ends on its old catalogue
// while the next call routes by the new one.
func TestReloadKeepsCallsInFlightOnTheirCatalogue(t *testing.T) {
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{})
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	f.a.hold, f.a.entered = hold, entered
	type answer struct {
		res gateway.ChatResult
		err error
	}
	held := make(chan answer, 1)
	go func() {
		res, err := f.call(t)
		held <- answer{res, err}
	}()
	<-entered

	next, err := domain.NewCatalogue([]domain.Model{{Name: "m", Type: domain.ModelChat, Provider: "pb", Upstream: "m-new",
		MaxOutputTokens: 10, Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Reload(gateway.Routing{Catalogue: next, Providers: map[string]ports.Provider{"pb": f.b}}); err != nil {
		t.Fatal(err)
	}
	close(hold)
	a := <-held
	if a.err != nil {
		t.Fatalf("the call in flight failed: %v", a.err)
	}
	if a.res.Model.Provider != "pa" || a.res.Model.Upstream != "m-a" {
		t.Errorf("the call in flight ended on %s/%s; want pa/m-a, its old catalogue", a.res.Model.Provider, a.res.Model.Upstream)
	}
	f.a.mu.Lock()
	f.a.hold, f.a.entered = nil, nil
	f.a.mu.Unlock()
	res, err := f.call(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.Provider != "pb" || res.Model.Upstream != "m-new" {
		t.Errorf("the next call went to %s/%s; want pb/m-new, the new catalogue", res.Model.Provider, res.Model.Upstream)
	}
	f.settledOnce(t)
}

// TestReloadRefusesAnUnconfiguredProvider keeps the old catalogue when the
// new one names a provider that is not given.
func TestReloadRefusesAnUnconfiguredProvider(t *testing.T) {
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{})
	next, err := domain.NewCatalogue([]domain.Model{{Name: "m", Type: domain.ModelChat, Provider: "nowhere",
		MaxOutputTokens: 10, Price: domain.Price{InputPerMillion: 1, OutputPerMillion: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Reload(gateway.Routing{Catalogue: next}); err == nil {
		t.Fatal("Reload accepted a catalogue naming an unconfigured provider")
	}
	if res, err := f.call(t); err != nil || res.Model.Provider != "pa" {
		t.Errorf("after a refused reload: %v, %v; want pa answering", res.Model.Provider, err)
	}
}
