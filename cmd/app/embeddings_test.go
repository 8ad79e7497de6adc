package main

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	oaiadapter "github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestEmbeddingsOfTokenArrays sends arrays of token ids, as LangChain's
// OpenAIEmbeddings does by default, through the whole call path with the
// official SDK and the mock: one vector per array, the token ids counted
// as the usage, reserved and charged exactly that, and the arrays in the
// call record.
func TestEmbeddingsOfTokenArrays(t *testing.T) {
	price := domain.Price{InputPerMillion: 1_000 * domain.MicrosPerUSD} // a tenth of a cent a token
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "embedder", Type: domain.ModelEmbedding, Provider: "mock", Upstream: "mock-embed", Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := mock.New(mock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ledger, log, keys := memory.NewLedger(), memory.NewCallLog(), memory.NewKeyStore()
	keys.Add(agentKey, domain.Caller{User: "ada", Team: "eng", Budgets: []domain.Budget{
		{Scope: domain.ScopeUser, ScopeID: "ada", Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}}})
	url, svc := serveGateway(t, gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"mock": p},
		Keys: keys, Ledger: ledger, CallLog: log}, gateway.Options{})
	client := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(agentKey),
		option.WithHeader("X-Audit-Reason", "embeddings test"), option.WithMaxRetries(0))

	tokens := [][]int64{{9906, 1917}, {15339}}
	resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "embedder",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: tokens}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || len(resp.Data[1].Embedding) != mock.DefaultDimensions || resp.Data[1].Index != 1 ||
		resp.Usage.PromptTokens != 3 || resp.Usage.TotalTokens != 3 {
		t.Errorf("embeddings = %s; want two vectors and 3 prompt tokens", resp.RawJSON())
	}

	recs := log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records; want 1", len(recs))
	}
	r := recs[0]
	cost := 3 * price.InputPerMillion / 1_000_000
	if r.Outcome != domain.OutcomeOK || !reflect.DeepEqual(r.EmbedTokens, [][]int{{9906, 1917}, {15339}}) || r.EmbedInputs != nil ||
		r.Usage != (domain.Usage{PromptTokens: 3}) || r.Cost() != cost || r.UsageExceedsReservation {
		t.Errorf("record = %+v; want the token arrays, 3 prompt tokens costing %d", r, cost)
	}
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	endings := ledger.Endings()
	if len(endings) != 1 {
		t.Fatalf("%d reservations; want 1", len(endings))
	}
	for id, e := range endings {
		if e.Amount != cost || e.Cost != cost || e.Settles != 1 {
			t.Errorf("reservation %s = %+v; want %d reserved and charged: the token ids exactly", id, e, cost)
		}
	}
}

// TestTokenArraysToATextOnlyProviderAreTheClientsToFix sends token arrays
// to an embedding model on Bedrock, which embeds text only, with a
// fallback on the mock, which would take them: the refusal is a 400 naming
// input and Bedrock, made before any call upstream; it is the request's
// fault, so no fallback or retry is tried and nothing is charged.
func TestTokenArraysToATextOnlyProviderAreTheClientsToFix(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Hang)
	br := newBedrock(t, up.URL)
	mp, err := mock.New(mock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	price := domain.Price{InputPerMillion: 20_000}
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "titan", Type: domain.ModelEmbedding, Provider: "bedrock", Upstream: "amazon.titan-embed-text-v2:0", Price: price, Fallbacks: []string{"spare"}},
		{Name: "spare", Type: domain.ModelEmbedding, Provider: "mock", Upstream: "mock-embed", Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	ledger, log, keys := memory.NewLedger(), memory.NewCallLog(), memory.NewKeyStore()
	keys.Add(agentKey, domain.Caller{User: "ada", Team: "eng"})
	url, svc := serveGateway(t, gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"bedrock": br, "mock": mp},
		Keys: keys, Ledger: ledger, CallLog: log}, gateway.Options{})
	client := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(agentKey),
		option.WithHeader("X-Audit-Reason", "embeddings test"), option.WithMaxRetries(0))

	_, err = client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "titan",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{9906, 1917}}})
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || e.Type != "invalid_request_error" || e.Param != "input" ||
		e.Code != "unsupported_feature" || !strings.Contains(e.Message, "bedrock") || !strings.Contains(e.Message, "token-array input") {
		t.Fatalf("error = %v; want a 400 unsupported_feature naming input and bedrock", err)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests reached Bedrock", n)
	}
	recs := log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records; want 1", len(recs))
	}
	if r := recs[0]; r.ErrorKind != domain.KindInvalid || r.FallbackUsed || len(r.Attempts) != 1 || r.Cost() != 0 {
		t.Errorf("record = %+v; want one attempt, refused as invalid, no fallback, nothing charged", r)
	}
	requireReleased(t, svc, ledger)
}

// TestAFallbacksRefusalIsNotTheClientsToFix: the model asked for takes
// token ids but fails (OpenAI answering 503), and its fallback cannot take
// them (Bedrock refusing before any call). The request was one the model
// asked for could serve, so the client hears of that model's failure, a
// 502, not the fallback's refusal as a 400 telling it to change its input.
func TestAFallbacksRefusalIsNotTheClientsToFix(t *testing.T) {
	failing := llmtest.NewUpstream(t, llmtest.Reply(http.StatusServiceUnavailable, "application/json", `{"error":{"message":"overloaded","type":"server_error"}}`))
	op, err := oaiadapter.New(oaiadapter.Options{BaseURL: failing.URL + "/v1", APIKey: oaiKey})
	if err != nil {
		t.Fatal(err)
	}
	bedrockUp := llmtest.NewUpstream(t, llmtest.Hang)
	price := domain.Price{InputPerMillion: 20_000}
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "oai", Type: domain.ModelEmbedding, Provider: "openai", Upstream: "text-embedding-3-small", Price: price, Fallbacks: []string{"titan"}},
		{Name: "titan", Type: domain.ModelEmbedding, Provider: "bedrock", Upstream: "amazon.titan-embed-text-v2:0", Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add(agentKey, domain.Caller{User: "ada", Team: "eng"})
	log, ledger := memory.NewCallLog(), memory.NewLedger()
	url, svc := serveGateway(t, gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat,
		Providers: map[string]ports.Provider{"openai": op, "bedrock": newBedrock(t, bedrockUp.URL)},
		Keys:      keys, Ledger: ledger, CallLog: log}, gateway.Options{MaxAttempts: 1, RetryBackoff: 1})
	client := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(agentKey),
		option.WithHeader("X-Audit-Reason", "embeddings test"), option.WithMaxRetries(0))

	_, err = client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "oai",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{9906, 1917}}})
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadGateway {
		t.Fatalf("error = %v; want a 502", err)
	}
	if len(failing.Requests()) != 1 || len(bedrockUp.Requests()) != 0 {
		t.Errorf("OpenAI got %d requests, Bedrock %d; want 1 and 0", len(failing.Requests()), len(bedrockUp.Requests()))
	}
	if recs := log.Records(); len(recs) != 1 || recs[0].ErrorKind != domain.KindUpstream || len(recs[0].Attempts) != 2 || recs[0].Cost() != 0 {
		t.Errorf("records = %+v; want one, an upstream failure after two attempts, nothing charged", recs)
	}
	requireReleased(t, svc, ledger)
}

// requireReleased waits for svc's settlements and fails t unless every
// reservation in ledger was released, nothing charged.
func requireReleased(t *testing.T, svc *gateway.Service, ledger *memory.Ledger) {
	t.Helper()
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, end := range ledger.Endings() {
		if end.Held || end.Cost != 0 {
			t.Errorf("reservation %s = %+v; want released", id, end)
		}
	}
}
