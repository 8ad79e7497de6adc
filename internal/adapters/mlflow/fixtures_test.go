package mlflow

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
)

// The kinds of call the fixtures cover.
const (
	okChat = iota
	okStream
	okEmbed
	providerError
	rejected
	okAfterRetry // the first attempt failed, the second answered
	numShapes
)

var t0 = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// sample returns a call record of the given shape; records with different
// ids differ in their times, tokens and costs.
func sample(id string, shape int, i int) domain.CallRecord {
	temp, seed, presence, frequency := 0.2, int64(0), 0.5, -1.5
	r := domain.CallRecord{
		RequestID: id, ClientRequestID: "client-" + id, Endpoint: domain.EndpointChat,
		Start: t0.Add(time.Duration(i) * time.Second), End: t0.Add(time.Duration(i)*time.Second + 250*time.Millisecond),
		KeyID: "key-1", User: "alice", Team: "risk", AuditReason: "quarterly model validation", ClientUser: "end-user-7",
		RequestedModel: "mock", Model: "mock-chat", Provider: "mock", UpstreamModel: "mock-chat-v1",
		Temperature: &temp, MaxTokens: 256, Seed: &seed, PresencePenalty: &presence, FrequencyPenalty: &frequency,
		Outcome:  domain.OutcomeOK,
		Usage:    domain.Usage{PromptTokens: 10 + i, CompletionTokens: 20 + i},
		Messages: []domain.Message{{Role: domain.RoleSystem, Content: "be brief"}, {Role: domain.RoleUser, Content: fmt.Sprintf("question %d about the secret plan", i)}},
		Output:   fmt.Sprintf("answer %d about the secret plan", i), ProviderTime: 200 * time.Millisecond,
	}
	price := domain.Price{InputPerMillion: 500_000, OutputPerMillion: 1_500_000}
	switch shape {
	case okStream:
		r.Stream = true
	case okEmbed:
		r.Endpoint, r.RequestedModel, r.Model, r.UpstreamModel = domain.EndpointEmbeddings, "mock-embed", "mock-embed", "mock-embed"
		r.Messages, r.Output, r.Temperature, r.MaxTokens = nil, "", nil, 0
		r.Seed, r.PresencePenalty, r.FrequencyPenalty = nil, nil, nil
		r.EmbedInputs, r.Dimensions = []string{"first secret plan input", "second secret plan input"}, 8
		r.Usage.CompletionTokens = 0
		price = domain.Price{InputPerMillion: 20_000}
	case providerError:
		r.Outcome, r.ErrorKind, r.ErrorMessage = domain.OutcomeError, domain.KindUpstream, "mock provider failed: 500"
		r.Output, r.Usage = "", domain.Usage{}
	case rejected:
		r.Outcome, r.ErrorKind, r.ErrorMessage = domain.OutcomeRejected, domain.KindBudgetExceeded, "team budget exceeded"
		r.Provider, r.UpstreamModel, r.Output, r.Usage, r.ProviderTime = "", "", "", domain.Usage{}, 0
	}
	r.InputCost, r.OutputCost = price.InputCost(r.Usage), price.OutputCost(r.Usage)
	r.Attempts = attempts(r, shape)
	return r
}

// attempts returns the provider attempts of a sample: one that answered in
// the last 200ms, none for a refusal, three failures in a row for a
// provider error, and a failure then an answer after a retry.
func attempts(r domain.CallRecord, shape int) []domain.Attempt {
	try := func(from, to time.Duration, failed bool) domain.Attempt {
		a := domain.Attempt{Provider: r.Provider, Model: r.Model, UpstreamModel: r.UpstreamModel,
			Start: r.Start.Add(from), End: r.Start.Add(to)}
		if failed {
			a.Failed, a.ErrorKind, a.ErrorMessage = true, domain.KindUpstream, "mock provider failed: 500"
		}
		return a
	}
	switch shape {
	case rejected:
		return nil
	case providerError:
		return []domain.Attempt{try(10*time.Millisecond, 60*time.Millisecond, true),
			try(70*time.Millisecond, 130*time.Millisecond, true), try(150*time.Millisecond, 250*time.Millisecond, true)}
	case okAfterRetry:
		return []domain.Attempt{try(10*time.Millisecond, 40*time.Millisecond, true), try(50*time.Millisecond, 250*time.Millisecond, false)}
	}
	return []domain.Attempt{try(50*time.Millisecond, 250*time.Millisecond, false)}
}

// mixed returns n records cycling through every shape.
func mixed(prefix string, n int) []domain.CallRecord {
	out := make([]domain.CallRecord, n)
	for i := range out {
		out[i] = sample(fmt.Sprintf("%s-%04d", prefix, i), i%numShapes, i)
	}
	return out
}

// downConns is a database that never answers.
type downConns struct{}

func (downConns) Acquire(context.Context) (*pgxpool.Conn, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "database down (test)")
}

// testOptions returns options for a call log journaling under t's temporary directory.
func testOptions(t testing.TB) Options {
	return Options{
		Schema: SchemaCreate, LogMode: LogTraces, Content: ContentFull, ExperimentPrefix: "tidygate/",
		JournalDir: t.TempDir(), JournalMaxRecords: 100_000, RefuseWhenFull: true,
		BatchSize: 50, FlushInterval: 10 * time.Millisecond,
	}
}

// closeNow closes c with a deadline that has already passed, leaving the
// journal as it is.
func closeNow(t testing.TB, c *CallLog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// journaled returns r as the writer reads it back from the journal.
func journaled(t testing.TB, r domain.CallRecord) call {
	t.Helper()
	value, err := encodeRecord(r, ContentFull)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeRecord(value)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
