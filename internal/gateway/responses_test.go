package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

var (
	owner   = domain.Caller{KeyID: "key-a", User: "alice", Team: "risk"}
	mallory = domain.Caller{KeyID: "key-m", User: "mallory", Team: "risk"}
)

// responsesService is a service whose response store is store (nil: none),
// at the time *now.
func responsesService(t *testing.T, store ports.ResponseStore, now *time.Time, opts gateway.Options) *gateway.Service {
	t.Helper()
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = func() time.Time { return *now }
	svc, err := gateway.NewService(gateway.Deps{Catalogue: cat, Providers: map[string]ports.Provider{"mock": &scriptedProvider{}},
		Keys: memory.NewKeyStore(), Ledger: memory.NewLedger(), Limiter: ratelimit.New(), CallLog: memory.NewCallLog(), Responses: store}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func answered(id string) domain.StoredResponse {
	return domain.StoredResponse{ID: id, Model: "mock-chat", FinishReason: domain.FinishStop, Usage: domain.Usage{PromptTokens: 3, CompletionTokens: 2},
		Input:  []domain.Message{{Role: domain.RoleUser, Content: "Hi"}},
		Output: []domain.Block{domain.TextBlock("Hello")}, Settings: []byte(`{"instructions":"Be brief."}`)}
}

func TestWithoutAResponseStoreNothingIsStored(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	svc := responsesService(t, nil, &now, gateway.Options{})
	yes := true
	if svc.StoresResponse(nil) || svc.StoresResponse(&yes) {
		t.Error("a service without a response store says it stores responses")
	}
	if err := svc.StoreResponse(ctx, owner, answered("resp_1")); err == nil {
		t.Error("StoreResponse succeeded without a store")
	}
	var de *domain.Error
	if _, err := svc.PreviousResponse(ctx, owner, "resp_1"); !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "previous_response_id" {
		t.Errorf("PreviousResponse = %v; want an invalid previous_response_id", err)
	}
	if _, err := svc.StoredResponse(ctx, owner, "resp_1"); !errors.Is(err, domain.KindNotFound) {
		t.Errorf("StoredResponse = %v; want not found", err)
	}
	if n, err := svc.SweepExpiredResponses(ctx, 10); n != 0 || err != nil {
		t.Errorf("SweepExpiredResponses = %d, %v", n, err)
	}
}

func TestStoreResponseOwnsExpiresAndContinues(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	store := memory.NewResponseStore()
	svc := responsesService(t, store, &now, gateway.Options{ResponseRetention: 2 * time.Hour})
	no := false
	if !svc.StoresResponse(nil) || svc.StoresResponse(&no) {
		t.Error("StoresResponse: want true when omitted (the default) and false when refused")
	}
	if err := svc.StoreResponse(ctx, owner, answered("resp_1")); err != nil {
		t.Fatal(err)
	}
	got, err := svc.StoredResponse(ctx, owner, "resp_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "alice" || got.KeyID != "key-a" || !got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) || !got.WithContent {
		t.Errorf("stored %+v", got)
	}
	prev, err := svc.PreviousResponse(ctx, owner, "resp_1")
	if conv := prev.Conversation(); err != nil || len(conv) != 2 || conv[1].Role != domain.RoleAssistant || conv[1].Content != "Hello" {
		t.Errorf("PreviousResponse = %+v, %v", conv, err)
	}
	var de *domain.Error
	if _, err := svc.PreviousResponse(ctx, mallory, "resp_1"); !errors.As(err, &de) || de.Kind != domain.KindInvalid ||
		de.Param != "previous_response_id" || de.Code != "previous_response_not_found" {
		t.Errorf("another user's PreviousResponse = %v", err)
	}
	if err := svc.DeleteStoredResponse(ctx, mallory, "resp_1"); !errors.Is(err, domain.KindNotFound) {
		t.Errorf("another user's delete = %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := svc.StoredResponse(ctx, owner, "resp_1"); !errors.Is(err, domain.KindNotFound) {
		t.Errorf("StoredResponse after the retention = %v; want not found", err)
	}
	if err := svc.StoreResponse(ctx, owner, answered("resp_2")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	if n, err := svc.SweepExpiredResponses(ctx, 10); n != 1 || err != nil || store.Len() != 0 {
		t.Errorf("SweepExpiredResponses = %d, %v, %d left; want the one expired response deleted", n, err, store.Len())
	}
}

func TestStoredResponsesKeepNoTextUnlessTheContentPolicySaysFull(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	for _, p := range []domain.ContentPolicy{domain.ContentPreview, domain.ContentNone} {
		store := memory.NewResponseStore()
		svc := responsesService(t, store, &now, gateway.Options{Content: p})
		if err := svc.StoreResponse(ctx, owner, answered("resp_1")); err != nil {
			t.Fatal(err)
		}
		kept, err := store.Response(ctx, "alice", "resp_1", now)
		if err != nil || kept.WithContent || kept.Input != nil || kept.Output != nil || kept.Settings != nil || kept.Usage.PromptTokens != 3 {
			t.Errorf("%s: stored %+v, %v; want no text, the usage kept", p, kept, err)
		}
		var de *domain.Error
		if _, err := svc.PreviousResponse(ctx, owner, "resp_1"); !errors.As(err, &de) || de.Kind != domain.KindInvalid ||
			de.Code != "stored_content_not_kept" {
			t.Errorf("%s: PreviousResponse = %v", p, err)
		}
	}
	// A response stored without text under an earlier policy cannot be
	// continued from once the policy is full.
	store := memory.NewResponseStore()
	r := answered("resp_old")
	r.Owner, r.ExpiresAt, r.Input, r.Output = "alice", now.Add(time.Hour), nil, nil
	if err := store.SaveResponse(ctx, r); err != nil {
		t.Fatal(err)
	}
	svc := responsesService(t, store, &now, gateway.Options{})
	var de *domain.Error
	if _, err := svc.PreviousResponse(ctx, owner, "resp_old"); !errors.As(err, &de) || de.Code != "stored_content_not_kept" {
		t.Errorf("PreviousResponse of a response stored without text = %v", err)
	}
}

// TestStoredResponseInput: a stored response's input is its owner's alone,
// not found as the response is for anyone else and without a store, and
// refused, naming the setting, when the response was stored without it.
func TestStoredResponseInput(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store := memory.NewResponseStore()
	svc := responsesService(t, store, &now, gateway.Options{})
	if err := svc.StoreResponse(ctx, owner, answered("resp_1")); err != nil {
		t.Fatal(err)
	}
	got, err := svc.StoredResponseInput(ctx, owner, "resp_1")
	if err != nil || got.ID != "resp_1" || len(got.Input) != 1 || got.Input[0].Content != "Hi" {
		t.Errorf("StoredResponseInput = %+v, %v", got, err)
	}
	_, unknown := svc.StoredResponse(ctx, owner, "resp_unknown")
	for _, tc := range []struct {
		name string
		svc  *gateway.Service
		who  domain.Caller
		id   string
	}{
		{"another user's", svc, mallory, "resp_1"},
		{"unknown", svc, owner, "resp_unknown"},
		{"malformed", svc, owner, "nope"},
		{"without a store", responsesService(t, nil, &now, gateway.Options{}), owner, "resp_1"},
	} {
		_, err := tc.svc.StoredResponseInput(ctx, tc.who, tc.id)
		if !errors.Is(err, domain.KindNotFound) || err.Error() != strings.ReplaceAll(unknown.Error(), "resp_unknown", tc.id) {
			t.Errorf("%s: %v; want StoredResponse's not found: %v", tc.name, err, unknown)
		}
	}

	for _, p := range []domain.ContentPolicy{domain.ContentPreview, domain.ContentNone} {
		svc := responsesService(t, memory.NewResponseStore(), &now, gateway.Options{Content: p})
		if err := svc.StoreResponse(ctx, owner, answered("resp_2")); err != nil {
			t.Fatal(err)
		}
		var de *domain.Error
		_, err := svc.StoredResponseInput(ctx, owner, "resp_2")
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "response_id" || de.Code != "stored_content_not_kept" ||
			!strings.Contains(de.Message, "MLFLOW_LOG_CONTENT") || !strings.Contains(de.Message, "resp_2") {
			t.Errorf("%s: StoredResponseInput = %v; want stored_content_not_kept naming the setting and the response", p, err)
		}
	}
}
