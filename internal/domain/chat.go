package domain

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Role is who wrote a chat message.
type Role string

// The chat roles tidygate accepts, as in the OpenAI API.
const (
	RoleSystem    Role = "system"
	RoleDeveloper Role = "developer"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Valid reports whether r is one of the accepted roles.
func (r Role) Valid() bool {
	switch r {
	case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant, RoleTool:
		return true
	}
	return false
}

// Message is one turn of a conversation. Content is its text; Blocks, when
// set, is its whole content as typed blocks (text, images, tool calls, tool
// results, reasoning), and Content then holds the text of its text blocks.
type Message struct {
	Role    Role
	Content string
	Blocks  []Block
	Name    string
}

// Limits on request parameters; anything outside them is rejected as invalid.
const (
	MaxTokensLimit = 1_000_000 // an absurd max_tokens beyond this is refused
	MaxMessages    = 10_000
	MaxEmbedInputs = 2048
)

// ChatRequest is a chat completion request after decoding. Model is the name
// the client asked for; the gateway replaces it with the upstream name before
// a provider sees it.
type ChatRequest struct {
	Model       string
	Messages    []Message
	MaxTokens   int      // 0 means "not set": the model's default output cap applies
	Temperature *float64 // nil means the provider's default
	TopP        *float64
	TopK        *int // nil means the provider's default
	Stop        []string
	// Seed asks the provider to sample deterministically, as far as it
	// can: nil means no seed, and 0 is a seed like any other. It is any
	// 64-bit integer, as OpenAI takes it; a provider whose seed is
	// narrower refuses one it cannot carry.
	Seed *int64
	// PresencePenalty and FrequencyPenalty lower (when positive) or raise
	// the likelihood of tokens already in the answer: by presence, or in
	// proportion to their count. Each is between -2 and 2; nil means the
	// provider's default (0 under OpenAI, so a chat decoder leaves a
	// penalty of 0 unset).
	PresencePenalty  *float64
	FrequencyPenalty *float64
	Stream           bool
	User             string // the client's end-user id, passed through for the record

	Tools          []Tool
	ToolChoice     ToolChoice
	ResponseFormat ResponseFormat
	Thinking       Thinking
}

// Validate checks everything about the request that does not depend on the
// catalogue, and names the first offending parameter.
func (r ChatRequest) Validate() error {
	if r.Model == "" {
		return InvalidParam("model", "model is required")
	}
	if len(r.Messages) == 0 {
		return InvalidParam("messages", "messages must contain at least one message")
	}
	if len(r.Messages) > MaxMessages {
		return InvalidParam("messages", "messages may contain at most %d messages", MaxMessages)
	}
	for i, m := range r.Messages {
		if !m.Role.Valid() {
			return InvalidParam(paramIndex("messages", i, "role"),
				"messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		if !utf8.ValidString(m.Content) {
			return InvalidParam(paramIndex("messages", i, "content"), "messages[%d].content is not valid UTF-8", i)
		}
	}
	if r.MaxTokens < 0 || r.MaxTokens > MaxTokensLimit {
		return InvalidParam("max_tokens", "max_tokens must be between 1 and %d", MaxTokensLimit)
	}
	if t := r.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		return InvalidParam("temperature", "temperature must be between 0 and 2")
	}
	if p := r.TopP; p != nil && (math.IsNaN(*p) || *p < 0 || *p > 1) {
		return InvalidParam("top_p", "top_p must be between 0 and 1")
	}
	if k := r.TopK; k != nil && *k < 1 {
		return InvalidParam("top_k", "top_k must be at least 1")
	}
	if err := validPenalty("presence_penalty", r.PresencePenalty); err != nil {
		return err
	}
	if err := validPenalty("frequency_penalty", r.FrequencyPenalty); err != nil {
		return err
	}
	return r.validateConversation()
}

// validPenalty refuses a penalty, named param, outside -2..2.
func validPenalty(param string, p *float64) error {
	if p != nil && (math.IsNaN(*p) || *p < -2 || *p > 2) {
		return InvalidParam(param, "%s must be between -2 and 2", param)
	}
	return nil
}

// PromptBytes returns the number of bytes of the prompt (message text, tool
// calls and results, inline images, tool definitions and a response schema),
// an upper bound on the prompt's content tokens for any byte-level
// tokenizer; an image by URL counts ImageURLTokens.
func (r ChatRequest) PromptBytes() int {
	n := len(r.ResponseFormat.Schema)
	for _, t := range r.Tools {
		n += len(t.Name) + len(t.Description) + len(t.Parameters)
	}
	for _, m := range r.Messages {
		n += len(m.Name)
		if m.Blocks == nil {
			n += len(m.Content)
			continue
		}
		for _, b := range m.Blocks {
			n += blockBytes(b)
		}
	}
	return n
}

// Usage counts the tokens one call consumed. PromptTokens counts every input
// token, CacheReadTokens and CacheWriteTokens included; CompletionTokens
// counts every output token, ReasoningTokens included.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	CacheReadTokens  int // input tokens read from the provider's prompt cache
	CacheWriteTokens int // input tokens written to the provider's prompt cache
	ReasoningTokens  int // output tokens spent on reasoning
}

// Total returns prompt plus completion tokens.
func (u Usage) Total() int { return u.PromptTokens + u.CompletionTokens }

// InputClasses splits a usage's input tokens into disjoint classes that add
// up to its PromptTokens.
type InputClasses struct {
	Uncached   int // neither read from nor written to the prompt cache
	CacheRead  int
	CacheWrite int
}

// Classes splits the prompt tokens by class, each token once: cache reads
// first, then cache writes, each capped at what remains of PromptTokens,
// so that an inconsistent count never makes a class negative or counts a
// token twice.
func (u Usage) Classes() InputClasses {
	prompt := max(u.PromptTokens, 0)
	read := min(max(u.CacheReadTokens, 0), prompt)
	write := min(max(u.CacheWriteTokens, 0), prompt-read)
	return InputClasses{Uncached: prompt - read - write, CacheRead: read, CacheWrite: write}
}

// ChatResponse is a complete (or, for streams, assembled) chat completion.
type ChatResponse struct {
	ID           string // the provider's id, if it gave one
	Model        string // the upstream model that answered
	Content      string // the text of the answer
	Blocks       []Block
	FinishReason string // FinishStop, FinishLength, FinishToolCalls, …
	StopSequence string // the stop sequence that ended the answer, if one did
	Usage        Usage
	Created      time.Time
}

// Parts returns the answer as blocks: Blocks when set, else one text block
// of Content (none when Content is empty).
func (r ChatResponse) Parts() []Block {
	return Message{Content: r.Content, Blocks: r.Blocks}.Parts()
}

// ChatChunk is one piece of a streamed chat completion. Each piece belongs
// to the answer's content block Index; a block's first chunk may carry Start
// (its type and, for a tool call, id and name), and a chunk of a block that
// was not started is text. Delta is text, ArgumentsDelta a piece of a tool
// call's arguments, ReasoningDelta reasoning text and Signature a reasoning
// block's signature. The final chunk of a stream carries FinishReason; Usage
// is set on the chunk that reports it.
type ChatChunk struct {
	Index          int
	Start          *Block
	Delta          string
	ArgumentsDelta string
	ReasoningDelta string
	Signature      string
	FinishReason   string
	StopSequence   string
	Usage          *Usage

	// Model is the catalogue name of the model answering (gateway.Result's
	// ModelName): a fallback's, or the model behind an alias asked for; the
	// gateway sets it, on every chunk.
	Model string
}

// EmbedRequest asks for one vector per input: per string of Inputs, or per
// array of token ids of Tokens (text the client tokenized itself, as
// OpenAI's API takes it). Exactly one of the two holds the input.
type EmbedRequest struct {
	Model      string
	Inputs     []string
	Tokens     [][]int
	Dimensions int // 0 means the model's default
	User       string
}

// MaxTokenID is the largest token id an embeddings input may hold: every
// vocabulary of OpenAI's is smaller than 2^31.
const MaxTokenID = 1<<31 - 1

// Validate checks the request's shape.
func (r EmbedRequest) Validate() error {
	if r.Model == "" {
		return InvalidParam("model", "model is required")
	}
	if len(r.Inputs) > 0 && len(r.Tokens) > 0 {
		return InvalidParam("input", "input mixes strings and token arrays; send either text or token ids")
	}
	n := r.Len()
	if n == 0 {
		return InvalidParam("input", "input must not be empty")
	}
	if n > MaxEmbedInputs {
		return InvalidParam("input", "input may contain at most %d items", MaxEmbedInputs)
	}
	for i, s := range r.Inputs {
		if s == "" {
			return InvalidParam("input", "input[%d] is empty", i)
		}
		if !utf8.ValidString(s) {
			return InvalidParam("input", "input[%d] is not valid UTF-8", i)
		}
	}
	for i, ids := range r.Tokens {
		if len(ids) == 0 {
			return InvalidParam("input", "input[%d] is empty", i)
		}
		for j, id := range ids {
			if id < 0 || id > MaxTokenID {
				return InvalidToken(i, j, strconv.Itoa(id))
			}
		}
	}
	if r.Dimensions < 0 || r.Dimensions > 65536 {
		return InvalidParam("dimensions", "dimensions must be between 1 and 65536")
	}
	return nil
}

// InvalidToken refuses token j of token input i, which the client sent as
// got: a token id is an integer from 0 to MaxTokenID.
func InvalidToken(i, j int, got string) *Error {
	return InvalidParam("input", "token %d of input %d is %s; a token id is an integer from 0 to %d", j, i, got, MaxTokenID)
}

// Len returns the number of inputs, text or token arrays.
func (r EmbedRequest) Len() int { return len(r.Inputs) + len(r.Tokens) }

// InputBytes returns the number of bytes of input text.
func (r EmbedRequest) InputBytes() int {
	n := 0
	for _, s := range r.Inputs {
		n += len(s)
	}
	return n
}

// InputTokens returns the number of token ids of the token inputs.
func (r EmbedRequest) InputTokens() int {
	n := 0
	for _, ids := range r.Tokens {
		n += len(ids)
	}
	return n
}

// EmbedResponse holds one vector per input, in input order.
type EmbedResponse struct {
	Model   string
	Vectors [][]float32
	Usage   Usage
}

func paramIndex(field string, i int, sub string) string {
	return field + "[" + strconv.Itoa(i) + "]." + sub
}

// EmbedLimits bound an embeddings request for every provider, the mock
// included, so that no request can make tidygate build a response that
// exhausts its memory. A zero field means its default (DefaultEmbedLimits).
type EmbedLimits struct {
	MaxDimensions     int // the most dimensions a request may ask for
	MaxInputs         int // the most inputs (strings or token arrays), at most MaxEmbedInputs
	MaxInputBytes     int // the most bytes of input text, or token ids of token inputs, all inputs together (n bytes of text are at most n tokens)
	MaxResponseValues int // the most numbers in the response: inputs × dimensions
}

// DefaultEmbedLimits are the bounds used where none are configured: the
// largest dimensions and input count the OpenAI API accepts, 1 MiB of text,
// and 2,097,152 numbers (2048 vectors of 1024, about 25 MB of JSON).
var DefaultEmbedLimits = EmbedLimits{MaxDimensions: 4096, MaxInputs: MaxEmbedInputs, MaxInputBytes: 1 << 20, MaxResponseValues: 2 << 20}

// WithDefaults fills each zero field from DefaultEmbedLimits.
func (l EmbedLimits) WithDefaults() EmbedLimits {
	d := DefaultEmbedLimits
	if l.MaxDimensions <= 0 {
		l.MaxDimensions = d.MaxDimensions
	}
	if l.MaxInputs <= 0 {
		l.MaxInputs = d.MaxInputs
	}
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = d.MaxInputBytes
	}
	if l.MaxResponseValues <= 0 {
		l.MaxResponseValues = d.MaxResponseValues
	}
	return l
}

// Check refuses a request over any bound with a KindInvalid error naming
// the parameter at fault. The response bound applies to the dimensions the
// request asks for; without them the provider's default applies, which the
// provider adapters bound by the size of the answer they read.
func (l EmbedLimits) Check(r EmbedRequest) error {
	l = l.WithDefaults()
	if r.Dimensions > l.MaxDimensions {
		return InvalidParam("dimensions", "dimensions must be at most %d (got %d)", l.MaxDimensions, r.Dimensions)
	}
	if r.Len() > l.MaxInputs {
		return InvalidParam("input", "input may contain at most %d items (got %d)", l.MaxInputs, r.Len())
	}
	if n := r.InputBytes(); n > l.MaxInputBytes {
		return InvalidParam("input", "input may hold at most %d bytes of text in all (got %d)", l.MaxInputBytes, n)
	}
	if n := r.InputTokens(); n > l.MaxInputBytes {
		return InvalidParam("input", "input may hold at most %d token ids in all (got %d)", l.MaxInputBytes, n)
	}
	if values := r.Len() * r.Dimensions; values > l.MaxResponseValues {
		return InvalidParam("dimensions", "%d inputs × %d dimensions is %d numbers; a response may hold at most %d: ask for fewer dimensions or send fewer inputs",
			r.Len(), r.Dimensions, values, l.MaxResponseValues)
	}
	return nil
}
