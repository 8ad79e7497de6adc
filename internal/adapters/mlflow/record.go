package mlflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// wireVersion is the version of the journal's record encoding. A journal
// written by a newer tidygate may hold versions this one does not know; such
// records are set aside, never misread.
const wireVersion = 1

// MLflow's size limits (mlflow/utils/validation.py and the column sizes).
const (
	maxPreview  = 1000 // trace_info.request_preview / response_preview
	maxTagValue = 8000 // trace tags, trace metadata and run tags
	maxParam    = 6000 // MAX_PARAM_VAL_LENGTH; longer params are truncated
)

// wireRecord is the journal's encoding of a call: the domain.CallRecord as
// the content mode allows it, plus the previews computed from the full text.
type wireRecord struct {
	V         int       `json:"v"`
	Kind      string    `json:"kind,omitempty"` // intentKind for an intent; empty for a call's record
	Content   string    `json:"content"`        // the content mode the record was journaled under
	RequestID string    `json:"request_id"`
	ClientID  string    `json:"client_request_id,omitempty"`
	Endpoint  string    `json:"endpoint"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`

	KeyID       string `json:"key_id,omitempty"`
	User        string `json:"user,omitempty"`
	Team        string `json:"team,omitempty"`
	AuditReason string `json:"audit_reason,omitempty"`
	ClientUser  string `json:"client_user,omitempty"`

	RequestedModel string   `json:"requested_model,omitempty"`
	Model          string   `json:"model,omitempty"`
	Provider       string   `json:"provider,omitempty"`
	UpstreamModel  string   `json:"upstream_model,omitempty"`
	Stream         bool     `json:"stream,omitempty"`
	Temperature    *float64 `json:"temperature,omitempty"`
	MaxTokens      int      `json:"max_tokens,omitempty"`
	Seed           *int64   `json:"seed,omitempty"`
	Presence       *float64 `json:"presence_penalty,omitempty"`
	Frequency      *float64 `json:"frequency_penalty,omitempty"`

	Attempts     int           `json:"attempts,omitempty"` // how many; records of earlier tidygates list none
	AttemptList  []wireAttempt `json:"attempt_list,omitempty"`
	FallbackUsed bool          `json:"fallback_used,omitempty"`
	BudgetFrom   string        `json:"budget_fallback_from,omitempty"`

	Outcome      string `json:"outcome"`
	ErrorKind    string `json:"error_kind,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`

	Interrupted             string `json:"interrupted,omitempty"`
	UsageExceedsReservation bool   `json:"usage_exceeds_reservation,omitempty"`

	PromptTokens     int   `json:"prompt_tokens,omitempty"`
	CompletionTokens int   `json:"completion_tokens,omitempty"`
	CacheReadTokens  int   `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int   `json:"cache_write_tokens,omitempty"`
	ReasoningTokens  int   `json:"reasoning_tokens,omitempty"`
	InputCost        int64 `json:"input_cost_micros,omitempty"`
	OutputCost       int64 `json:"output_cost_micros,omitempty"`
	ProviderTimeNS   int64 `json:"provider_time_ns,omitempty"`

	Messages     []wireMessage `json:"messages,omitempty"`
	Tools        []wireTool    `json:"tools,omitempty"`
	EmbedInputs  []string      `json:"embed_inputs,omitempty"`
	EmbedTokens  [][]int       `json:"embed_tokens,omitempty"`
	Output       string        `json:"output,omitempty"`
	OutputBlocks []wireBlock   `json:"output_blocks,omitempty"`
	Dimensions   int           `json:"dimensions,omitempty"`

	RequestPreview  string `json:"request_preview,omitempty"`
	ResponsePreview string `json:"response_preview,omitempty"`

	// An intent's: the model's group, and the reservation's amount (its
	// worst-case usage is in the token fields).
	Group    string `json:"group,omitempty"`
	Reserved int64  `json:"reserved_micros,omitempty"`

	// A record's whose call's settlement the ledger owes (kindOwes): what
	// the reservation is to be settled at.
	Owed *wireSettlement `json:"owed,omitempty"`
}

// wireSettlement is the journal's encoding of a ports.Settlement: the
// caller as the ledger counts it (key, user, team), the model that
// answered and its group, and the usage and cost charged.
type wireSettlement struct {
	ReservationID    string    `json:"reservation_id"`
	KeyID            string    `json:"key_id,omitempty"`
	User             string    `json:"user,omitempty"`
	Team             string    `json:"team,omitempty"`
	Model            string    `json:"model"`
	Group            string    `json:"group,omitempty"`
	PromptTokens     int       `json:"prompt_tokens,omitempty"`
	CompletionTokens int       `json:"completion_tokens,omitempty"`
	CacheReadTokens  int       `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int       `json:"cache_write_tokens,omitempty"`
	ReasoningTokens  int       `json:"reasoning_tokens,omitempty"`
	Cost             int64     `json:"cost_micros"`
	At               time.Time `json:"at"`
}

func toWireSettlement(s ports.Settlement) *wireSettlement {
	return &wireSettlement{ReservationID: s.ReservationID, KeyID: s.Caller.KeyID, User: s.Caller.User, Team: s.Caller.Team,
		Model: s.Model, Group: s.Group, PromptTokens: s.Usage.PromptTokens, CompletionTokens: s.Usage.CompletionTokens,
		CacheReadTokens: s.Usage.CacheReadTokens, CacheWriteTokens: s.Usage.CacheWriteTokens, ReasoningTokens: s.Usage.ReasoningTokens,
		Cost: int64(s.Cost), At: s.At}
}

func (w *wireSettlement) settlement() ports.Settlement {
	return ports.Settlement{ReservationID: w.ReservationID, Caller: domain.Caller{KeyID: w.KeyID, User: w.User, Team: w.Team},
		Model: w.Model, Group: w.Group, Cost: domain.Micros(w.Cost), At: w.At,
		Usage: domain.Usage{PromptTokens: w.PromptTokens, CompletionTokens: w.CompletionTokens,
			CacheReadTokens: w.CacheReadTokens, CacheWriteTokens: w.CacheWriteTokens, ReasoningTokens: w.ReasoningTokens}}
}

// intentKind marks a journal entry holding a call's intent, not its record:
// the writer never delivers it to MLflow, and removes it with the record
// that supersedes it.
const intentKind = "intent"

// wireAttempt is the journal's encoding of a domain.Attempt.
type wireAttempt struct {
	Deployment    string    `json:"deployment,omitempty"` // provider/upstream; empty in records of earlier tidygates
	Provider      string    `json:"provider"`
	Model         string    `json:"model,omitempty"`
	UpstreamModel string    `json:"upstream_model,omitempty"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	ErrorKind     string    `json:"error_kind,omitempty"` // set when the attempt failed
	ErrorMessage  string    `json:"error_message,omitempty"`
}

// call is a journaled call as the writer sees it: the record, holding only
// the text the content mode allowed, and its previews.
type call struct {
	rec             domain.CallRecord
	attempts        int         // the provider calls made (rec.Attempts lists them, except in older records)
	content         ContentMode // what rec holds: full text, or none of it
	requestPreview  string      // empty when the content mode keeps none
	responsePreview string
	intent          *domain.CallIntent // set when the entry is an intent, not a record
	owed            *ports.Settlement  // set when the record's settlement was owed (kindOwes)
}

// encodeRecord returns the journal's encoding of r under the content mode.
func encodeRecord(r domain.CallRecord, mode ContentMode) ([]byte, error) {
	return json.Marshal(wireOf(r, mode))
}

// encodeOwing returns the journal's encoding of r under the content mode,
// with the settlement the ledger owes its call.
func encodeOwing(r domain.CallRecord, mode ContentMode, owed ports.Settlement) ([]byte, error) {
	w := wireOf(r, mode)
	w.Owed = toWireSettlement(owed)
	return json.Marshal(w)
}

// wireOf returns r as the journal encodes it under the content mode.
func wireOf(r domain.CallRecord, mode ContentMode) wireRecord {
	w := wireRecord{
		V: wireVersion, Content: string(mode), RequestID: r.RequestID, ClientID: r.ClientRequestID, Endpoint: string(r.Endpoint), Start: r.Start, End: r.End,
		KeyID: r.KeyID, User: r.User, Team: r.Team, AuditReason: r.AuditReason, ClientUser: r.ClientUser,
		RequestedModel: r.RequestedModel, Model: r.Model, Provider: r.Provider, UpstreamModel: r.UpstreamModel,
		Stream: r.Stream, Temperature: r.Temperature, MaxTokens: r.MaxTokens,
		Seed: r.Seed, Presence: r.PresencePenalty, Frequency: r.FrequencyPenalty,
		Attempts: len(r.Attempts), FallbackUsed: r.FallbackUsed, BudgetFrom: r.BudgetFallbackFrom,
		Outcome: string(r.Outcome), ErrorMessage: r.ErrorMessage,
		Interrupted: string(r.Interrupted), UsageExceedsReservation: r.UsageExceedsReservation,
		PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens,
		CacheReadTokens: r.Usage.CacheReadTokens, CacheWriteTokens: r.Usage.CacheWriteTokens, ReasoningTokens: r.Usage.ReasoningTokens,
		InputCost: int64(r.InputCost), OutputCost: int64(r.OutputCost), ProviderTimeNS: int64(r.ProviderTime),
		Dimensions: r.Dimensions,
	}
	if r.Outcome != domain.OutcomeOK {
		w.ErrorKind = r.ErrorKind.String()
	}
	for _, a := range r.Attempts {
		wa := wireAttempt{Deployment: a.Deployment, Provider: a.Provider, Model: a.Model, UpstreamModel: a.UpstreamModel, Start: a.Start, End: a.End}
		if a.Failed {
			wa.ErrorKind, wa.ErrorMessage = a.ErrorKind.String(), a.ErrorMessage
		}
		w.AttemptList = append(w.AttemptList, wa)
	}
	if mode.KeepsPreviews() {
		w.RequestPreview, w.ResponsePreview = previews(r)
	}
	if mode.KeepsText() {
		w.Messages = toWireMessages(r.Messages)
		w.Tools = toWireTools(r.Tools)
		w.EmbedInputs, w.EmbedTokens = r.EmbedInputs, r.EmbedTokens
		w.Output = r.Output
		w.OutputBlocks = toWireBlocks(r.OutputBlocks)
	}
	return w
}

// encodeIntent returns the journal's encoding of an intent.
func encodeIntent(i domain.CallIntent) ([]byte, error) {
	return json.Marshal(wireRecord{
		V: wireVersion, Kind: intentKind, RequestID: i.RequestID, Endpoint: string(i.Endpoint), Start: i.Start,
		KeyID: i.KeyID, User: i.User, Team: i.Team, AuditReason: i.AuditReason,
		RequestedModel: i.RequestedModel, Model: i.Model, Group: i.Group, Provider: i.Provider, Stream: i.Stream,
		Reserved: int64(i.Reserved), PromptTokens: i.Worst.PromptTokens, CompletionTokens: i.Worst.CompletionTokens,
		CacheReadTokens: i.Worst.CacheReadTokens, CacheWriteTokens: i.Worst.CacheWriteTokens, ReasoningTokens: i.Worst.ReasoningTokens,
	})
}

// decodeRecord is the inverse of encodeRecord and encodeIntent.
func decodeRecord(value []byte) (call, error) {
	var w wireRecord
	if err := json.Unmarshal(value, &w); err != nil {
		return call{}, fmt.Errorf("undecodable journal record: %w", err)
	}
	if w.V != wireVersion {
		return call{}, fmt.Errorf("journal record %q has encoding version %d; this tidygate reads version %d", w.RequestID, w.V, wireVersion)
	}
	usage := domain.Usage{PromptTokens: w.PromptTokens, CompletionTokens: w.CompletionTokens,
		CacheReadTokens: w.CacheReadTokens, CacheWriteTokens: w.CacheWriteTokens, ReasoningTokens: w.ReasoningTokens}
	if w.Kind == intentKind {
		i := domain.CallIntent{RequestID: w.RequestID, Endpoint: domain.Endpoint(w.Endpoint), Start: w.Start,
			KeyID: w.KeyID, User: w.User, Team: w.Team, AuditReason: w.AuditReason,
			RequestedModel: w.RequestedModel, Model: w.Model, Group: w.Group, Provider: w.Provider, Stream: w.Stream,
			Reserved: domain.Micros(w.Reserved), Worst: usage}
		return call{rec: domain.CallRecord{RequestID: w.RequestID}, intent: &i}, nil
	}
	r := domain.CallRecord{
		RequestID: w.RequestID, ClientRequestID: w.ClientID, Endpoint: domain.Endpoint(w.Endpoint), Start: w.Start, End: w.End,
		KeyID: w.KeyID, User: w.User, Team: w.Team, AuditReason: w.AuditReason, ClientUser: w.ClientUser,
		RequestedModel: w.RequestedModel, Model: w.Model, Provider: w.Provider, UpstreamModel: w.UpstreamModel,
		Stream: w.Stream, Temperature: w.Temperature, MaxTokens: w.MaxTokens,
		Seed: w.Seed, PresencePenalty: w.Presence, FrequencyPenalty: w.Frequency,
		FallbackUsed: w.FallbackUsed, BudgetFallbackFrom: w.BudgetFrom,
		Outcome: domain.Outcome(w.Outcome), ErrorKind: kindNamed(w.ErrorKind), ErrorMessage: w.ErrorMessage,
		Interrupted: domain.Interruption(w.Interrupted), UsageExceedsReservation: w.UsageExceedsReservation,
		Usage:     usage,
		InputCost: domain.Micros(w.InputCost), OutputCost: domain.Micros(w.OutputCost),
		ProviderTime: time.Duration(w.ProviderTimeNS),
		EmbedInputs:  w.EmbedInputs, EmbedTokens: w.EmbedTokens, Output: w.Output, Dimensions: w.Dimensions,
		Messages: fromWireMessages(w.Messages), Tools: fromWireTools(w.Tools), OutputBlocks: fromWireBlocks(w.OutputBlocks),
	}
	for _, a := range w.AttemptList {
		r.Attempts = append(r.Attempts, domain.Attempt{Deployment: a.Deployment, Provider: a.Provider, Model: a.Model, UpstreamModel: a.UpstreamModel,
			Start: a.Start, End: a.End, Failed: a.ErrorKind != "", ErrorKind: kindNamed(a.ErrorKind), ErrorMessage: a.ErrorMessage})
	}
	c := call{rec: r, attempts: max(w.Attempts, len(r.Attempts)), content: ContentMode(w.Content), requestPreview: w.RequestPreview, responsePreview: w.ResponsePreview}
	if w.Owed != nil {
		owed := w.Owed.settlement()
		c.owed = &owed
	}
	return c, nil
}

// recordHead is what a journaled record says of itself before its call:
// its encoding's version, its kind and its request id. Reading only these
// skips the copies of the call's text that decoding the whole record makes.
type recordHead struct {
	V         int    `json:"v"`
	Kind      string `json:"kind"`
	RequestID string `json:"request_id"`
}

// decodeHead reads a journaled record's head; ok is false when the record
// is not one this tidygate reads (decodeRecord says why).
func decodeHead(value []byte) (h recordHead, ok bool) {
	return h, json.Unmarshal(value, &h) == nil && h.V == wireVersion
}

// kindNamed returns the error kind whose String is name. Kinds are numbered
// from zero without gaps and the first unused number prints as "kind(n)";
// unknown names (from a newer tidygate) read as domain.KindInternal.
func kindNamed(name string) domain.Kind {
	for k := domain.KindInternal; ; k++ {
		s := k.String()
		if s == name {
			return k
		}
		if strings.HasPrefix(s, "kind(") || k == math.MaxUint8 {
			return domain.KindInternal
		}
	}
}

// previews returns the request and response previews MLflow derives from
// the root span's inputs and outputs (mlflow/tracing/utils/truncation.py):
// for a chat, the text of the last user message and of the assistant's
// answer; otherwise (embeddings, or a message without text) the JSON itself;
// each at most 1000 characters, ending in "..." when cut. An unsuccessful
// call has no response preview, nor has a token count. r holds the full
// text.
func previews(r domain.CallRecord) (request, response string) {
	c := call{rec: r, content: ContentFull}
	if r.Endpoint != domain.EndpointEmbeddings {
		request = lastUserText(r.Messages)
	}
	if request == "" {
		request, _ = marshalJSON(requestBody(c, r.RequestedModel))
	}
	if answered(r) {
		if r.Endpoint != domain.EndpointEmbeddings {
			response = r.Output
		}
		if response == "" {
			response, _ = marshalJSON(responseBody(c))
		}
	}
	return truncate(request, maxPreview), truncate(response, maxPreview)
}

// lastUserText returns the content of the last user message, or of the last
// message when no user spoke.
func lastUserText(msgs []domain.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == domain.RoleUser {
			return msgs[i].Content
		}
	}
	if len(msgs) > 0 {
		return msgs[len(msgs)-1].Content
	}
	return ""
}

// truncate makes s safe for a PostgreSQL text column (valid UTF-8, no NUL)
// and cuts it to at most limit characters, the last three being "..." when
// anything was cut. A limit of zero means no limit.
func truncate(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if limit <= 0 || len(s) <= limit || utf8.RuneCountInString(s) <= limit {
		return s
	}
	cut, n := 0, 0
	for i := range s {
		if n == limit-3 {
			cut = i
			break
		}
		n++
	}
	return s[:cut] + "..."
}
