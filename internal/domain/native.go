package domain

// A request can reach a provider in two ways. Translated, it is decoded
// into a ChatRequest and the provider's adapter writes it in the provider's
// wire format; whatever the domain model does not carry is lost. Passed
// through, the client speaks the provider's own dialect and its body goes
// upstream as it was sent, so that fields tidygate does not know reach the
// provider. The gateway governs both alike, from the ChatRequest decoded
// beside the native body.

// Dialect names the wire format of an API a client can speak and a provider
// adapter can take as it is. The names are opaque to the domain.
type Dialect string

// The dialects tidygate serves and can pass through.
const (
	DialectAnthropicMessages Dialect = "anthropic.messages" // POST /v1/messages
	DialectOpenAIChat        Dialect = "openai.chat"        // POST /v1/chat/completions
	DialectOpenAIResponses   Dialect = "openai.responses"   // POST /v1/responses
)

// NativeRequest is a request in a provider's own dialect, passed through.
// The adapter sends Body unchanged but for the model (Model, the upstream
// name) and, when the body sets none, the output cap (MaxTokens); it
// replaces the client's credentials by its own and sends Header as given.
type NativeRequest struct {
	Dialect Dialect
	Body    []byte              // the client's JSON body
	Header  map[string][]string // the client's headers meant for the provider (beta and version headers)
	Stream  bool
	// Model is the upstream model name the body is sent with.
	Model string
	// Answer is the model name the response shows the client in place of
	// the provider's: the catalogue model that answered.
	Answer string
	// MaxTokens is the output cap the reservation assumed, sent when the
	// body sets no cap of its own; 0 sends none.
	MaxTokens int
}

// NativeEvent is one server-sent event of a passed-through stream.
type NativeEvent struct {
	Raw    []byte // the event as the client receives it: the provider's bytes, the model name replaced
	Text   string // answer text the event carries, for the call record
	Output int    // bytes of output the event carries: text, tool-call arguments, reasoning
	// Usage is the provider's count so far, when the event carried one; the
	// count of the event that ends the stream is final.
	Usage *Usage
}

// NativeResponse is a provider's answer to a NativeRequest.
type NativeResponse struct {
	ContentType string // of Body, as the provider sent it
	Body        []byte // non-streamed: the provider's body, the model name replaced
	Text        string // the answer's text, for the call record
	Usage       Usage  // the provider's final count
	// Counted says the provider reported Usage; when it reported none
	// (some OpenAI-compatible servers do not), the gateway estimates.
	Counted bool
}

// ProviderOnly refuses a request, or marks it for pass-through only, for a
// feature the provider serves itself and the domain model does not carry
// (a server tool, a hosted tool, the MCP connector): param names it in the
// request. Such a request can be served only by a model whose provider
// takes its dialect as it is; any other model refuses it with this error.
func ProviderOnly(param, feature string) *Error {
	return &Error{Kind: KindInvalid, Param: param, Code: "unsupported_feature", Message: feature + " (" + param +
		") is served by the provider itself: only a model whose provider takes this API as it is (pass-through) can serve this request"}
}
