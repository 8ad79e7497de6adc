package contract

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// CallLogUnderTest is a call log and a way to see what it delivered, which
// the port does not offer.
type CallLogUnderTest struct {
	Log ports.CallLog
	// Delivered returns the request IDs of the records the log holds where
	// it keeps them for good (in memory, MLflow's tables), once each,
	// after delivering whatever it has accepted.
	Delivered func(ctx context.Context) ([]string, error)
}

// TestCallLog checks that a call log admits calls while it has room, and
// that every record it accepts, of every kind a call can end in, is
// delivered exactly once. newLog returns an empty log.
func TestCallLog(t *testing.T, newLog func(t *testing.T) CallLogUnderTest) {
	ctx := context.Background()

	t.Run("AFreshLogAdmits", func(t *testing.T) {
		release, err := newLog(t).Log.Admit()
		if err != nil {
			t.Fatalf("Admit = %v, want nil", err)
		}
		release()
	})

	t.Run("EveryKindOfRecordIsDeliveredOnce", func(t *testing.T) {
		l := newLog(t)
		recs := callRecords()
		for _, r := range recs {
			if err := l.Log.Record(ctx, r); err != nil {
				t.Fatalf("Record %s: %v", r.RequestID, err)
			}
		}
		got, err := l.Delivered(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		var want []string
		for _, r := range recs {
			want = append(want, r.RequestID)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("delivered %q, want each of %q once", got, want)
		}
	})
}

// callRecords returns one record of each way a call ends: answered,
// answered by a fallback, cut short and charged, failed, refused before a
// model was known, and an embeddings call.
func callRecords() []domain.CallRecord {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	base := domain.CallRecord{Endpoint: domain.EndpointChat, Start: start, End: start.Add(time.Second),
		KeyID: "key_1", User: "alice", Team: "risk", AuditReason: "contract",
		RequestedModel: "chat", Model: "chat", Provider: "mock", UpstreamModel: "chat-v1",
		Messages: []domain.Message{{Role: domain.RoleUser, Content: "hello"}}}
	ok := base
	ok.RequestID, ok.Outcome, ok.Output = "contract-ok", domain.OutcomeOK, "hi"
	ok.Usage, ok.InputCost, ok.OutputCost = domain.Usage{PromptTokens: 5, CompletionTokens: 1}, 5, 2
	fallback := ok
	fallback.RequestID, fallback.Model, fallback.FallbackUsed = "contract-fallback", "spare", true
	cut := ok
	cut.RequestID, cut.Outcome, cut.Stream = "contract-cut", domain.OutcomeError, true
	cut.ErrorKind, cut.ErrorMessage, cut.Interrupted = domain.KindUpstream, "the stream broke off", domain.InterruptedByUpstream
	cut.UsageExceedsReservation = true
	failed := base
	failed.RequestID, failed.Outcome, failed.ErrorKind, failed.ErrorMessage = "contract-failed", domain.OutcomeError, domain.KindUpstream, "provider failed"
	refused := base
	refused.RequestID, refused.Outcome, refused.ErrorKind, refused.ErrorMessage = "contract-refused", domain.OutcomeRejected, domain.KindInvalid, "temperature must be between 0 and 2"
	refused.Model, refused.Provider, refused.UpstreamModel, refused.RequestedModel = "", "", "", ""
	embed := base
	embed.RequestID, embed.Endpoint, embed.Outcome, embed.Messages = "contract-embed", domain.EndpointEmbeddings, domain.OutcomeOK, nil
	embed.EmbedInputs, embed.Dimensions, embed.Usage, embed.InputCost = []string{"a", "b"}, 8, domain.Usage{PromptTokens: 2}, 1
	return []domain.CallRecord{ok, fallback, cut, failed, refused, embed}
}
