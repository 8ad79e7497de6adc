package domain

import "time"

// Endpoint names the API operation a call record describes.
type Endpoint string

// The recorded endpoints: the API a call came through. Chat completions,
// Messages and Responses are all chat calls; the record keeps which. A
// token count (Messages' count_tokens) is recorded when a provider counts
// it: it has a request and a count of its input tokens, but no answer.
const (
	EndpointChat        Endpoint = "chat.completions"
	EndpointMessages    Endpoint = "messages"  // Anthropic's Messages API
	EndpointResponses   Endpoint = "responses" // OpenAI's Responses API
	EndpointEmbeddings  Endpoint = "embeddings"
	EndpointCountTokens Endpoint = "messages.count_tokens" // Anthropic's token count of a Messages request
)

// Outcome says how a call ended.
type Outcome string

// The call outcomes. A rejected call never reached a provider.
const (
	OutcomeOK       Outcome = "ok"
	OutcomeError    Outcome = "error"
	OutcomeRejected Outcome = "rejected"
)

// Interruption says what ended a call before it was complete.
type Interruption string

// The interruptions. Each one but InterruptedByLedger leaves a call charged
// for what it consumed.
const (
	InterruptedByUpstream      Interruption = "upstream"       // the provider's stream broke off or failed
	InterruptedByClient        Interruption = "client"         // the client hung up or stopped reading
	InterruptedByStreamTimeout Interruption = "stream_timeout" // the stream outlasted PROVIDER_STREAM_TIMEOUT
	InterruptedByShutdown      Interruption = "shutdown"       // tidygate was shutting down
	// InterruptedByLedger is a call whose reservation, made while its
	// provider worked (a caller without budgets), failed: its answer was
	// withheld, and what it consumed is in its record only, the ledger
	// holding nothing to charge.
	InterruptedByLedger Interruption = "ledger"
	// InterruptedByCrash is a call whose process stopped (killed, crashed,
	// lost power) while its provider worked: its intent was durable, its
	// completion never was. It is charged its whole reservation and must be
	// reconciled with the provider's bill.
	InterruptedByCrash Interruption = "crash"
)

// CallIntent is what the call log keeps of a call while its provider works:
// who asked, why, for which model, when, and what is reserved. The call's
// record (its completion) supersedes it; an intent left without one by a
// process that stopped becomes the record of an interrupted call, charged
// its reservation.
type CallIntent struct {
	RequestID      string // the reservation's id too
	Endpoint       Endpoint
	Start          time.Time
	KeyID          string
	User           string
	Team           string
	AuditReason    string
	RequestedModel string
	Model          string // the catalogue model tried first
	Group          string // Model's group, whose budgets the charge counts against
	Provider       string
	Stream         bool
	Reserved       Micros // the reservation's amount: what an interrupted call is charged
	Worst          Usage  // the most the call can consume on Model: an interrupted call's usage
}

// Interrupted returns the record of the call i began, when its process
// stopped before the call was complete: charged its whole reservation,
// found at at.
func (i CallIntent) Interrupted(at time.Time) CallRecord {
	return CallRecord{
		RequestID: i.RequestID, Endpoint: i.Endpoint, Start: i.Start, End: at,
		KeyID: i.KeyID, User: i.User, Team: i.Team, AuditReason: i.AuditReason,
		RequestedModel: i.RequestedModel, Model: i.Model, Provider: i.Provider, Stream: i.Stream,
		Outcome: OutcomeError, ErrorKind: KindUnavailable, Interrupted: InterruptedByCrash,
		ErrorMessage: "tidygate stopped while the provider worked; the call is charged its whole reservation, to be reconciled with the provider's bill",
		Usage:        i.Worst, InputCost: i.Reserved,
	}
}

// CallRecord is everything the audit trail keeps about one call: who asked,
// why, for which model, what it cost, how it ended. It is handed to the call
// log once the outcome is known.
type CallRecord struct {
	RequestID       string // unique per call, made by tidygate; the call log's idempotency key
	ClientRequestID string // the client's own X-Request-Id, if it sent one; not necessarily unique
	Endpoint        Endpoint
	Start           time.Time
	End             time.Time

	KeyID       string
	User        string
	Team        string
	AuditReason string
	ClientUser  string // the request's optional "user" field

	RequestedModel string // as the client named it (may be an alias)
	Model          string // the catalogue model that answered (or was to answer)
	Provider       string
	UpstreamModel  string
	Stream         bool
	Temperature    *float64
	MaxTokens      int
	// Seed, PresencePenalty and FrequencyPenalty are the chat request's,
	// when it set them.
	Seed             *int64
	PresencePenalty  *float64
	FrequencyPenalty *float64

	Attempts     []Attempt // the provider calls made, in order, across retries and fallbacks
	FallbackUsed bool      // true when a fallback model answered
	// BudgetFallbackFrom is the model asked for when a budget left no room
	// for it and its budget fallback (Model) answered instead.
	BudgetFallbackFrom string

	Outcome      Outcome
	ErrorKind    Kind
	ErrorMessage string

	// Interrupted says what cut short a call that had consumed something
	// when it failed; it was then charged for what it consumed.
	Interrupted Interruption
	// Usage is the provider's count in full, or tidygate's estimate for an
	// interrupted call whose count never arrived. The costs are what the
	// budgets were charged, which is never more than was reserved.
	Usage Usage
	// UsageExceedsReservation flags a provider count beyond what the call
	// could consume: the budgets were charged the reservation's bound, not
	// the count.
	UsageExceedsReservation bool
	InputCost               Micros
	OutputCost              Micros
	ProviderTime            time.Duration // time spent waiting on providers

	Messages     []Message // chat input
	Tools        []Tool    // the tools a chat call offered the model
	EmbedInputs  []string  // embeddings input, as text
	EmbedTokens  [][]int   // embeddings input, as token ids
	Output       string    // chat output text; empty for embeddings
	OutputBlocks []Block   // the whole answer when it held more than text (tool calls, reasoning)
	Dimensions   int       // embedding vector length
}

// Attempt is one provider call made for a call: a try of one model, which
// answered or failed. The call log shows each as a span of the call's trace.
type Attempt struct {
	Deployment    string // the deployment tried: provider/upstream
	Provider      string // the provider instance
	Model         string // the catalogue model tried
	UpstreamModel string // the provider's name for it
	Start         time.Time
	End           time.Time
	Failed        bool
	ErrorKind     Kind   // why it failed, when Failed
	ErrorMessage  string // the provider's error, when Failed
}

// Cost returns the call's total cost.
func (r CallRecord) Cost() Micros { return r.InputCost + r.OutputCost }

// Duration returns the call's wall time.
func (r CallRecord) Duration() time.Duration { return r.End.Sub(r.Start) }
