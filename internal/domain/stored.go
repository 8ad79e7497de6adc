package domain

import "time"

// ContentPolicy says how much prompt and response text tidygate keeps once
// a call is over (MLFLOW_LOG_CONTENT): in the call log and in stored
// responses alike, so that one setting decides where conversations may
// persist.
type ContentPolicy string

// The content policies.
const (
	// ContentFull keeps the text: the call log's spans carry the messages
	// and the answer, and stored responses carry their input and output.
	ContentFull ContentPolicy = "full"
	// ContentPreview keeps only the call log's request and response
	// previews (at most 1000 characters each); stored responses carry no text.
	ContentPreview ContentPolicy = "preview"
	// ContentNone keeps no prompt or response text anywhere.
	ContentNone ContentPolicy = "none"
)

// KeepsText reports whether whole prompts and answers may be kept.
func (p ContentPolicy) KeepsText() bool { return p == ContentFull }

// KeepsPreviews reports whether the call log may keep its previews.
func (p ContentPolicy) KeepsPreviews() bool { return p == ContentFull || p == ContentPreview }

// StoredResponse is an answer of the Responses API kept for the user whose
// key asked for it, so that a later request can continue from it
// (previous_response_id) and its owner can read it back or delete it. Its
// ID is the response's own id, the one its client was given.
type StoredResponse struct {
	ID        string
	Owner     string // the user of the key that created it; only this user sees it
	KeyID     string
	CreatedAt time.Time
	ExpiresAt time.Time // not served from then on, and deleted

	Model             string // the model name the client was shown
	FinishReason      string
	Usage             Usage
	ParallelToolCalls bool

	// WithContent is false when the content policy kept no text: Input and
	// Output are then empty and the response cannot be continued from.
	WithContent bool
	// Input is the conversation the response answered, without the
	// request's instructions: a continued response's history, then the
	// request's own input.
	Input []Message
	// Output is the answer's blocks.
	Output []Block
	// Settings is what the response repeats of its request (its tools,
	// tool choice, instructions, sampling settings, …), encoded by the
	// dialect that answered, which alone reads it. Like Input, it is kept
	// only with the content.
	Settings []byte
}

// Conversation is the history a request continuing from r starts with: r's
// input followed by r's answer as the assistant's turn.
func (r StoredResponse) Conversation() []Message {
	out := make([]Message, 0, len(r.Input)+1)
	out = append(out, r.Input...)
	if len(r.Output) > 0 {
		out = append(out, Message{Role: RoleAssistant, Blocks: r.Output, Content: JoinText(r.Output)})
	}
	return out
}
