package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/jsonerr"
)

// Decoding happens here and nowhere else: reading the body within its limit,
// parsing JSON with errors that point at the fault, and converting the
// OpenAI wire format into domain requests, which the gateway validates.

// decodeRequest reads and decodes a request body; when that fails, it has
// had the gateway record the refusal, answered the client, and returns
// false. Decoding refuses only what the wire format shows (a body that is
// not JSON, wrong types, what the dialect requires or does not offer); what
// the request means is validated once, by the gateway.
func decodeRequest[T any](h *handler, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error)) (T, bool) {
	limit := h.maxBody
	if exchangeOf(r).dialect != dialectOpenAI {
		limit = h.maxAgentBody
	}
	body, err := readBody(w, r, limit)
	var in T
	if err == nil {
		in, err = decode(body)
	}
	if err != nil {
		err = h.gw.Refuse(r.Context(), h.call(r), endpointOf(r), modelNamed(body), err)
		h.writeError(w, r, err)
		return in, false
	}
	return in, true
}

// endpointOf names the API operation a request is for, in the call record.
func endpointOf(r *http.Request) domain.Endpoint {
	switch {
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		return domain.EndpointEmbeddings
	case strings.HasSuffix(r.URL.Path, "/count_tokens"):
		return domain.EndpointCountTokens
	case exchangeOf(r).dialect == dialectAnthropic:
		return domain.EndpointMessages
	case exchangeOf(r).dialect == dialectResponses:
		return domain.EndpointResponses
	}
	return domain.EndpointChat
}

// modelNamed returns the body's "model" string, if it has one, so that the
// record of a refused request names the model it was for.
func modelNamed(body []byte) string {
	var probe struct {
		Model json.RawMessage `json:"model"`
	}
	var model string
	if json.Unmarshal(body, &probe) != nil || json.Unmarshal(probe.Model, &model) != nil {
		return ""
	}
	return model
}

// readBody reads a JSON request body of at most limit bytes. A body sent
// with Content-Encoding: gzip is decompressed, and the limit bounds it after
// decompression too, so a small bomb cannot inflate past it; any other
// encoding is refused with 415. A body that does not arrive within the
// server's read timeout gets 408.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); !jsonContentType(ct) {
		return nil, &domain.Error{Kind: domain.KindInvalid, Code: codeUnsupportedMedia,
			Message: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)}
	}
	gzipped, err := gzipEncoded(r.Header)
	if err != nil {
		return nil, err
	}
	tooLarge := func(after string) error {
		return &domain.Error{Kind: domain.KindInvalid, Code: codeTooLarge,
			Message: fmt.Sprintf("the request body exceeds the limit of %d bytes%s", limit, after)}
	}
	if r.ContentLength > limit {
		return nil, tooLarge("")
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, readError(err, tooLarge)
	}
	if !gzipped {
		// The call's own copy: the gateway may hand a provider the body as
		// it is, and the decoded request refers to it.
		return bytes.Clone(buf.Bytes()), nil
	}
	inflated, err := gunzip(buf.Bytes(), limit)
	if errors.Is(err, errInflatedTooLarge) {
		return nil, tooLarge(" after decompression")
	}
	if err != nil {
		return nil, &domain.Error{Kind: domain.KindInvalid, Code: "invalid_body", Err: err,
			Message: "the request body is not valid gzip (Content-Encoding: gzip)"}
	}
	return inflated, nil
}

// readError explains why a request body could not be read.
func readError(err error, tooLarge func(after string) error) error {
	var maxErr *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &maxErr):
		return tooLarge("")
	case errors.As(err, &netErr) && netErr.Timeout():
		return &domain.Error{Kind: domain.KindInvalid, Code: codeRequestTimeout, Err: err,
			Message: "the request body did not arrive in time; send it faster or make it smaller"}
	}
	return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_body", Err: err,
		Message: "the request body could not be read"}
}

// bodyBuffers are the buffers request bodies are read into. A buffer goes
// back as soon as its body has been copied out (or inflated): nothing of a
// request refers to it.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the buffers kept for reuse, so that one large body
// does not stay in memory for good.
const maxPooledBody = 64 << 10

func putBodyBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bodyBuffers.Put(buf)
}

// gzipEncoded reports whether the body is gzip-encoded (Content-Encoding
// gzip or x-gzip), and refuses any other encoding but identity with 415.
func gzipEncoded(h http.Header) (bool, error) {
	values := h.Values("Content-Encoding")
	if len(values) == 0 {
		return false, nil
	}
	enc := strings.ToLower(strings.TrimSpace(strings.Join(values, ",")))
	switch enc {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, &domain.Error{Kind: domain.KindInvalid, Code: codeUnsupportedMedia,
		Message: fmt.Sprintf("Content-Encoding %q is not supported; send the body as it is, or compressed once with gzip", enc)}
}

// errInflatedTooLarge says a gzip body inflates past the body limit.
var errInflatedTooLarge = errors.New("the body inflates past the limit")

// gunzip decompresses body, reading at most limit bytes of its output.
func gunzip(body []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errInflatedTooLarge
	}
	return out, nil
}

// jsonContentType accepts application/json, any +json type, and no type at all.
func jsonContentType(ct string) bool {
	if ct == "" || ct == "application/json" { // the common case, without parsing
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// decodeJSON parses body, which must hold exactly one JSON object, into dst.
// Fields dst does not name are ignored: OpenAI clients send extras. A key
// that appears twice in one object, at any depth, is refused: which of the
// two counts would otherwise be a rule of the decoder's, invisible to the
// client (and to whoever reads the audit trail).
func decodeJSON(body []byte, dst any) error {
	start := bytes.TrimLeft(body, " \t\r\n")
	if len(start) == 0 {
		return invalidJSON("the request body is empty; send a JSON object")
	}
	if start[0] != '{' {
		return invalidJSON("the request body must be a JSON object")
	}
	// The common case, a valid body, in one pass without a Decoder (which
	// copies the body into its own buffer); any failure is decoded again
	// below, where the Decoder's offsets explain it.
	if json.Unmarshal(body, dst) == nil {
		if key, where, found := duplicateKey(body); found {
			return duplicateKeyError(key, where)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return jsonError(body, err)
	}
	end := int(dec.InputOffset())
	if rest := bytes.TrimLeft(body[end:], " \t\r\n"); len(rest) > 0 {
		at := len(body) - len(rest)
		return invalidJSON("unexpected data after the JSON object at %s", jsonerr.Position(body, at))
	}
	if key, where, found := duplicateKey(body); found {
		return duplicateKeyError(key, where)
	}
	return nil
}

func duplicateKeyError(key, where string) error {
	return &domain.Error{Kind: domain.KindInvalid, Code: "duplicate_key", Param: where,
		Message: fmt.Sprintf("duplicate key %q in the request body (in %s); send each key once", key, where)}
}

func invalidJSON(format string, args ...any) error {
	return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_json", Message: fmt.Sprintf(format, args...)}
}

// jsonError explains a decoding failure: where the syntax breaks, or which
// parameter has the wrong type.
func jsonError(body []byte, err error) error {
	f := jsonerr.Explain(body, err)
	if f.Field != "" {
		return domain.InvalidParam(f.Field, "%s", f.Message)
	}
	return invalidJSON("%s", f.Message)
}

// firstByte returns the first byte of a JSON value, or 0 when raw is empty
// (the field was absent). A JSON null starts with 'n'.
func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// given reports whether a field was present with a value other than null.
func given(raw json.RawMessage) bool {
	b := firstByte(raw)
	return b != 0 && b != 'n'
}

// nonEmptyArray reports whether raw is anything but absent, null or [].
func nonEmptyArray(raw json.RawMessage) bool {
	if !given(raw) {
		return false
	}
	var items []json.RawMessage
	return json.Unmarshal(raw, &items) != nil || len(items) > 0
}

// oneOfStrings reports whether raw is a JSON string among allowed.
func oneOfStrings(raw json.RawMessage, allowed ...string) bool {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

// chatRequestJSON is the body of POST /v1/chat/completions.
type chatRequestJSON struct {
	Model               string             `json:"model"`
	Messages            []messageJSON      `json:"messages"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	Temperature         *float64           `json:"temperature"`
	TopP                *float64           `json:"top_p"`
	Seed                *int64             `json:"seed"`
	PresencePenalty     *float64           `json:"presence_penalty"`
	FrequencyPenalty    *float64           `json:"frequency_penalty"`
	Stop                json.RawMessage    `json:"stop"`
	Stream              bool               `json:"stream"`
	StreamOptions       *streamOptionsJSON `json:"stream_options"`
	User                string             `json:"user"`

	Tools             []toolJSON          `json:"tools"`
	ToolChoice        json.RawMessage     `json:"tool_choice"` // "none", "auto", "required" or a named function
	ParallelToolCalls *bool               `json:"parallel_tool_calls"`
	ResponseFormat    *responseFormatJSON `json:"response_format"`
	ReasoningEffort   *string             `json:"reasoning_effort"`

	// OpenAI's own, which the domain request does not carry: a request
	// that sets it is served by pass-through only.
	LogitBias        map[string]float64 `json:"logit_bias"`         // token id → bias
	WebSearchOptions json.RawMessage    `json:"web_search_options"` // web search before answering (OpenAI's search models)

	// Features tidygate does not offer. Each is refused when asked for,
	// because ignoring it would change what the client gets back.
	N            *int            `json:"n"`
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	Logprobs     *bool           `json:"logprobs"`
	TopLogprobs  *int            `json:"top_logprobs"`
	Audio        json.RawMessage `json:"audio"`
	Modalities   []string        `json:"modalities"`
}

type streamOptionsJSON struct {
	IncludeUsage bool `json:"include_usage"`
}

type responseFormatJSON struct {
	Type       string          `json:"type"`
	JSONSchema *jsonSchemaJSON `json:"json_schema"`
}

type jsonSchemaJSON struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

// toolJSON is a function tool the model may call.
type toolJSON struct {
	Type     string       `json:"type"`
	Function functionJSON `json:"function"`
}

type functionJSON struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

// toolCallJSON is a tool call in an assistant message, in a request or an answer.
type toolCallJSON struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function toolCallFuncJSON `json:"function"`
}

type toolCallFuncJSON struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type messageJSON struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"` // a string, an array of parts, or null
	Name       string          `json:"name"`
	ToolCalls  []toolCallJSON  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type contentPartJSON struct {
	Type     string        `json:"type"`
	Text     string        `json:"text"`
	ImageURL *imageURLJSON `json:"image_url"`
}

type imageURLJSON struct {
	URL    string `json:"url"`
	Detail string `json:"detail"`
}

// chatInput is a decoded chat request and the options that shape its answer.
type chatInput struct {
	req          domain.ChatRequest
	includeUsage bool   // stream_options.include_usage: end the stream with a usage chunk
	body         []byte // as the client sent it, for a provider that takes it as it is
	// untranslatable names a feature OpenAI serves itself (see
	// chatDecoder), which req leaves out: then only a model that takes the
	// body as it is can serve the request.
	untranslatable error
}

// chatDecoder decodes the parts of a chat completions body, and notes the
// first feature in it that OpenAI serves itself: logit_bias, web search,
// tool call arguments that are not a JSON object. The domain request leaves those out.
type chatDecoder struct{ passOnly }

// decodeChat turns a chat completions body into a valid domain request.
func decodeChat(body []byte) (chatInput, error) {
	var w chatRequestJSON
	if err := decodeChatJSON(body, &w); err != nil {
		return chatInput{}, err
	}
	if err := w.unsupported(); err != nil {
		return chatInput{}, err
	}
	var d chatDecoder
	if len(w.LogitBias) > 0 {
		d.providerOnly("logit_bias", "a token bias")
	}
	if len(w.WebSearchOptions) > 0 && string(w.WebSearchOptions) != "null" {
		d.providerOnly("web_search_options", "web search")
	}
	req := domain.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, Stream: w.Stream, User: w.User,
		Seed: w.Seed, PresencePenalty: penalty(w.PresencePenalty), FrequencyPenalty: penalty(w.FrequencyPenalty)}
	var err error
	if req.MaxTokens, err = w.maxTokens(); err != nil {
		return chatInput{}, err
	}
	if req.Stop, err = stopSequences(w.Stop); err != nil {
		return chatInput{}, err
	}
	if len(w.Messages) > 0 {
		req.Messages = make([]domain.Message, len(w.Messages))
	}
	for i, m := range w.Messages {
		if req.Messages[i], err = d.message(i, m); err != nil {
			return chatInput{}, err
		}
	}
	if req.Tools, err = chatTools(w.Tools); err != nil {
		return chatInput{}, err
	}
	if req.ToolChoice, err = chatToolChoice(w.ToolChoice); err != nil {
		return chatInput{}, err
	}
	req.ToolChoice.NoParallel = w.ParallelToolCalls != nil && !*w.ParallelToolCalls
	if req.ResponseFormat, err = chatResponseFormat(w.ResponseFormat); err != nil {
		return chatInput{}, err
	}
	if req.Thinking.Effort, err = reasoningEffort("reasoning_effort", w.ReasoningEffort); err != nil {
		return chatInput{}, err
	}
	return chatInput{req: req, includeUsage: w.Stream && w.StreamOptions != nil && w.StreamOptions.IncludeUsage, body: body,
		untranslatable: d.only}, nil
}

// penalty is a presence or frequency penalty as the domain request holds
// it: nil when absent or 0, OpenAI's default, which changes nothing.
func penalty(p *float64) *float64 {
	if p == nil || *p == 0 {
		return nil
	}
	return p
}

// reasoningEffort reads a reasoning effort given as param: "" when absent.
func reasoningEffort(param string, effort *string) (string, error) {
	if effort == nil || *effort == "" {
		return "", nil
	}
	if !domain.ValidEffort(*effort) {
		return "", domain.InvalidParam(param, "%s %q is not one of none, minimal, low, medium, high, xhigh, max", param, *effort)
	}
	return *effort, nil
}

// unsupported refuses features tidygate does not offer, naming the parameter.
func (w *chatRequestJSON) unsupported() error {
	switch {
	case w.N != nil && *w.N != 1:
		return domain.InvalidParam("n", "only n=1 is supported")
	case nonEmptyArray(w.Functions):
		return domain.InvalidParam("functions", "functions (the deprecated form of function calling) are not supported; send tools")
	case given(w.FunctionCall) && !oneOfStrings(w.FunctionCall, "none", "auto"):
		return domain.InvalidParam("function_call", "function_call (the deprecated form of tool_choice) is not supported; send tool_choice")
	case w.Logprobs != nil && *w.Logprobs:
		return domain.InvalidParam("logprobs", "logprobs are not supported")
	case w.TopLogprobs != nil && *w.TopLogprobs != 0:
		return domain.InvalidParam("top_logprobs", "top_logprobs are not supported")
	case given(w.Audio):
		return domain.InvalidParam("audio", "audio output is not supported")
	}
	for _, m := range w.Modalities {
		if m != "text" {
			return domain.InvalidParam("modalities", "modality %q is not supported; only \"text\" is", m)
		}
	}
	return nil
}

// maxTokens returns the output cap from max_completion_tokens or its older
// name max_tokens; 0 means neither was sent.
func (w *chatRequestJSON) maxTokens() (int, error) {
	if w.MaxTokens != nil && w.MaxCompletionTokens != nil && *w.MaxTokens != *w.MaxCompletionTokens {
		return 0, domain.InvalidParam("max_completion_tokens", "max_tokens and max_completion_tokens differ; send one of them")
	}
	param, v := "max_tokens", w.MaxTokens
	if w.MaxCompletionTokens != nil {
		param, v = "max_completion_tokens", w.MaxCompletionTokens
	}
	if v == nil {
		return 0, nil
	}
	if *v < 1 || *v > domain.MaxTokensLimit {
		return 0, domain.InvalidParam(param, "%s must be between 1 and %d", param, domain.MaxTokensLimit)
	}
	return *v, nil
}

// stopSequences accepts stop as a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return nil, domain.InvalidParam("stop", "stop must not be empty")
		}
		return []string{s}, nil
	case '[':
		var seqs []string
		if err := json.Unmarshal(raw, &seqs); err != nil {
			return nil, domain.InvalidParam("stop", "stop must be a string or an array of strings")
		}
		for i, s := range seqs {
			if s == "" {
				return nil, domain.InvalidParam("stop", "stop[%d] is empty", i)
			}
		}
		return seqs, nil
	}
	return nil, domain.InvalidParam("stop", "stop must be a string or an array of strings")
}

// embedRequestJSON is the body of POST /v1/embeddings.
type embedRequestJSON struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"` // a string or an array of strings
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

// embedInput is a decoded embeddings request and the encoding of its answer.
type embedInput struct {
	req    domain.EmbedRequest
	base64 bool // encoding_format "base64": vectors as base64 of little-endian float32
}

// decodeEmbed turns an embeddings body into a valid domain request.
func decodeEmbed(body []byte) (embedInput, error) {
	var w embedRequestJSON
	if err := decodeJSON(body, &w); err != nil {
		return embedInput{}, err
	}
	in := embedInput{req: domain.EmbedRequest{Model: w.Model, User: w.User}}
	switch w.EncodingFormat {
	case "", "float":
	case "base64":
		in.base64 = true
	default:
		return embedInput{}, domain.InvalidParam("encoding_format", "encoding_format must be \"float\" or \"base64\"")
	}
	if w.Dimensions != nil {
		if *w.Dimensions < 1 {
			return embedInput{}, domain.InvalidParam("dimensions", "dimensions must be between 1 and 65536")
		}
		in.req.Dimensions = *w.Dimensions
	}
	var err error
	if in.req.Inputs, in.req.Tokens, err = embedInputs(w.Input); err != nil {
		return embedInput{}, err
	}
	return in, nil
}

// embedInputs reads input in each of the shapes OpenAI's API takes: a
// string, an array of strings, an array of token ids (one input), or an
// array of arrays of token ids. An array holding both strings and token
// arrays is read as both, for the request's validation to refuse; one
// holding token ids both bare and in arrays is refused here, as it is none
// of the shapes.
func embedInputs(raw json.RawMessage) (texts []string, tokens [][]int, err error) {
	notInput := func() error {
		return domain.InvalidParam("input", "input must be a string, an array of strings, an array of token ids or an array of arrays of token ids")
	}
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil, nil // reported by validation
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, notInput()
		}
		return []string{s}, nil, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, nil, notInput()
		}
		var bare []int // token ids outside an array: the one input's
		for i, item := range items {
			switch b := firstByte(item); {
			case b == '"':
				var s string
				if err := json.Unmarshal(item, &s); err != nil {
					return nil, nil, notInput()
				}
				texts = append(texts, s)
			case b == '[':
				ids, err := tokenIDs(item, len(tokens))
				if err != nil {
					return nil, nil, err
				}
				tokens = append(tokens, ids)
			case isNumber(b):
				id, err := tokenID(item, 0, i)
				if err != nil {
					return nil, nil, err
				}
				bare = append(bare, id)
			default:
				return nil, nil, notInput()
			}
		}
		if bare != nil && tokens != nil {
			return nil, nil, domain.InvalidParam("input", "input mixes token ids and arrays of them; send one array of token ids or an array of arrays")
		}
		if bare != nil {
			tokens = [][]int{bare}
		}
		return texts, tokens, nil
	}
	return nil, nil, notInput()
}

// tokenIDs reads raw, an array, as the token ids of token input i.
func tokenIDs(raw json.RawMessage, i int) ([]int, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, domain.InvalidParam("input", "input[%d] must be an array of token ids", i)
	}
	ids := make([]int, len(items))
	for j, item := range items {
		id, err := tokenID(item, i, j)
		if err != nil {
			return nil, err
		}
		ids[j] = id
	}
	return ids, nil
}

// tokenID reads raw as token j of token input i: an integer, which the
// request's validation then bounds. Anything else (1.5, 1e400, a string)
// is refused, the number quoted (its first 29 bytes when longer than 32).
func tokenID(raw json.RawMessage, i, j int) (int, error) {
	lit := string(raw)
	if !isNumber(firstByte(raw)) {
		lit = "not a number"
	}
	id, err := strconv.Atoi(lit)
	if err != nil {
		if len(lit) > 32 {
			lit = lit[:29] + "..."
		}
		return 0, domain.InvalidToken(i, j, lit)
	}
	return id, nil
}

// isNumber reports whether b begins a JSON number.
func isNumber(b byte) bool { return b == '-' || ('0' <= b && b <= '9') }
