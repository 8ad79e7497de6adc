package domain

import "time"

// Endpoint names the API operation a call record describes.
type Endpoint string

// The recorded endpoints.
const (
	EndpointChat       Endpoint = "chat.completions"
	EndpointEmbeddings Endpoint = "embeddings"
)

// Outcome says how a call ended.
type Outcome string

// The call outcomes. A rejected call never reached a provider.
const (
	OutcomeOK       Outcome = "ok"
	OutcomeError    Outcome = "error"
	OutcomeRejected Outcome = "rejected"
)

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

	Attempts     int  // provider calls made, across retries and fallbacks
	FallbackUsed bool // true when a fallback model answered

	Outcome      Outcome
	ErrorKind    Kind
	ErrorMessage string

	Usage        Usage
	InputCost    Micros
	OutputCost   Micros
	ProviderTime time.Duration // time spent waiting on providers

	Messages    []Message // chat input
	EmbedInputs []string  // embeddings input
	Output      string    // chat output text; empty for embeddings
	Dimensions  int       // embedding vector length
}

// Cost returns the call's total cost.
func (r CallRecord) Cost() Micros { return r.InputCost + r.OutputCost }

// Duration returns the call's wall time.
func (r CallRecord) Duration() time.Duration { return r.End.Sub(r.Start) }
