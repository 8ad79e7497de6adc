package contract

import (
	"context"
	"reflect"
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
	// Reopen stops the log as a process that dies would (what is durable
	// stays) and returns the log a new process opens on the same store.
	Reopen func(t *testing.T) CallLogUnderTest
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
	testIntents(t, newLog)
	testOwed(t, newLog)
}

// testOwed checks that a settlement recorded with its call is owed after a
// restart, even once the record is delivered, until it is acknowledged,
// and that the record is delivered once like any other.
func testOwed(t *testing.T, newLog func(t *testing.T) CallLogUnderTest) {
	ctx := context.Background()
	t.Run("AnOwedSettlementOutlivesItsRecordsDeliveryUntilAcknowledged", func(t *testing.T) {
		l := newLog(t)
		rec := callRecords()[0]
		owed := ports.Settlement{ReservationID: rec.RequestID, Caller: domain.Caller{KeyID: rec.KeyID, User: rec.User, Team: rec.Team},
			Model: rec.Model, Group: "frontier", Usage: rec.Usage, Cost: rec.Cost(), At: rec.End}
		if err := l.Log.RecordOwing(ctx, rec, owed); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Delivered(ctx); err != nil || !slices.Equal(got, []string{rec.RequestID}) {
			t.Fatalf("delivered %q (%v), want the record once", got, err)
		}
		again := l.Reopen(t)
		left, err := again.Log.Owed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || !reflect.DeepEqual(left[0], owed) {
			t.Fatalf("owed after a restart %+v, want the settlement as it was recorded", left)
		}
		again.Log.Acknowledge([]string{rec.RequestID})
		if left, err := again.Log.Owed(ctx); err != nil || len(left) != 0 {
			t.Fatalf("owed %+v (%v) once acknowledged, want none", left, err)
		}
		if got, err := again.Delivered(ctx); err != nil || !slices.Equal(got, []string{rec.RequestID}) {
			t.Fatalf("delivered %q (%v) after the restart, want the record still once", got, err)
		}
	})
}

// testIntents checks that an intent without its record is what the log
// reopened returns as unfinished, that the record supersedes an intent,
// and that no intent is delivered as a call of its own.
func testIntents(t *testing.T, newLog func(t *testing.T) CallLogUnderTest) {
	ctx := context.Background()
	t.Run("AnIntentWithoutItsRecordIsUnfinishedAfterARestart", func(t *testing.T) {
		l := newLog(t)
		at := time.Date(2030, 3, 15, 12, 0, 0, 0, time.UTC)
		intent := func(id string) domain.CallIntent {
			return domain.CallIntent{RequestID: id, Endpoint: domain.EndpointChat, Start: at, KeyID: "key-1", User: "ada",
				Team: "risk", AuditReason: "quarterly review", RequestedModel: "gpt", Model: "gpt", Group: "frontier",
				Provider: "openai", Stream: true, Reserved: 1234, Worst: domain.Usage{PromptTokens: 12, CompletionTokens: 100}}
		}
		for _, id := range []string{"cut-short", "answered"} {
			if err := l.Log.Intend(ctx, intent(id)); err != nil {
				t.Fatalf("Intend %s: %v", id, err)
			}
		}
		done := callRecords()[0]
		done.RequestID = "answered"
		if err := l.Log.Record(ctx, done); err != nil {
			t.Fatal(err)
		}
		again := l.Reopen(t)
		left, err := again.Log.Unfinished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0] != intent("cut-short") {
			t.Fatalf("unfinished %+v, want the intent of cut-short as it was written", left)
		}
		if err := again.Log.Record(ctx, left[0].Interrupted(at.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		if left, err := again.Log.Unfinished(ctx); err != nil || len(left) != 0 {
			t.Fatalf("unfinished %+v (%v) once recorded, want none", left, err)
		}
		got, err := again.Delivered(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{"answered", "cut-short"}; !slices.Equal(got, want) {
			t.Fatalf("delivered %q, want each of %q once and no intent of its own", got, want)
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
