// Package mock is tidygate's default provider: it answers without a network,
// deterministically, fast enough for benchmarks, and can be told to be slow
// or to fail, for demos and tests.
//
// A chat reply is derived from the last user message: its hash picks between
// 12 and 60 words from a fixed word list, one completion token per word. The
// reply stops at exactly MaxTokens words (finish reason "length") when the
// natural reply is longer, else it ends with finish reason "stop". Prompt
// tokens are estimated as a real tokenizer would roughly count them (a token
// per four bytes plus four per message), never above what the gateway
// reserved. A stream emits the words as chunks, then a final chunk with the
// finish reason and the usage. Embeddings are unit vectors derived from a
// hash of each input (its text, or its token ids), of req.Dimensions
// (default 256) dimensions; a token input counts its token ids as its
// prompt tokens.
//
// It behaves like an agent's model too. Given tools, it answers with a tool
// call (finish reason "tool_calls") when tool_choice requires one (the named
// tool, or the first tool), or when the last message is the user's and its
// text holds the directive "[[tool:NAME]]" (arguments generated from the
// tool's JSON Schema: required properties, const, the first enum value,
// bounds honoured) or "[[tool:NAME {"arg":"value"}]]" (the arguments given).
// A message of tool results (a user message, or an OpenAI-style message of
// role tool) never asks for a tool, so an agent's loop ends
// with a text answer: "Tool result: " and the start of the results' text.
// "[[say:TEXT]]" in the last user message makes TEXT the answer;
// "[[cache:READ,WRITE]]" there makes the usage report READ prompt tokens
// read from a prompt cache and WRITE written to it (within the prompt's
// count, reads first), as a provider with prompt caching would. System
// messages among the turns (agents send them) are passed over when the
// mock looks for the last message. With thinking enabled, the answer starts with a
// reasoning block carrying a signature. A json_object response format gets
// {"answer": text}, a json_schema one an instance of the schema. Streams
// send each block's start, then its pieces. A seed and presence and
// frequency penalties are accepted and change nothing: the answer is
// already determined by the request.
//
// Test hooks are chosen by the upstream model name:
//
//	mock-error-500  always fails with domain.KindUpstream (as an HTTP 500 would)
//	mock-error-429  always fails with domain.KindRateLimited, RetryAfter one second
//	mock-error-400  always fails with domain.KindInvalid (the provider refused the request)
//	mock-flaky-N    fails (domain.KindUpstream) the first N calls of each distinct
//	                prompt, then succeeds; useful for retry tests. It remembers at
//	                most 4096 prompts and forgets them all when that is exceeded.
//	mock-slow       waits two seconds (honouring ctx) before answering
//
// Every other model name answers normally.
package mock

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// The model names that select test hooks.
const (
	ModelError500    = "mock-error-500"
	ModelError429    = "mock-error-429"
	ModelError400    = "mock-error-400"
	ModelSlow        = "mock-slow"
	ModelFlakyPrefix = "mock-flaky-" // followed by the number of failures, e.g. "mock-flaky-2"
)

// SlowDelay is how long the mock-slow model waits before answering.
const SlowDelay = 2 * time.Second

// DefaultDimensions is the length of an embedding vector when the request
// does not set Dimensions.
const DefaultDimensions = 256

// Bounds of the natural reply length, in words.
const (
	minWords = 12
	maxWords = 60
)

// maxFlakyPrompts bounds the memory of the mock-flaky-N hook.
const maxFlakyPrompts = 4096

// vocabulary is the fixed word list replies are made of.
const vocabulary = "the a gateway model budget token request policy audit record answer call " +
	"provider stream chunk cost team user reason limit ledger trace retry fallback " +
	"latency prompt reply vector pool connection database spend quota " +
	"caller key service route upstream mock deterministic word list hash seed " +
	"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega"

// Options configures the mock provider.
type Options struct {
	// Latency is added before every answer (before the first chunk of a
	// stream), honouring ctx. Zero answers at once.
	Latency time.Duration
	// FailureRate is the share of calls, from 0 to 1, that fail at random
	// with domain.KindUpstream.
	FailureRate float64
	// Seed seeds the random failures: one seed gives one sequence of them.
	Seed int64
}

// Provider is the mock provider; it is safe for concurrent use.
type Provider struct {
	latency     time.Duration
	failureRate float64
	words       []string
	classify    llm.Classifier

	mu    sync.Mutex
	rng   *rand.Rand     // guarded by mu
	flaky map[uint64]int // guarded by mu: calls so far per prompt, for mock-flaky-N
}

var _ ports.Provider = (*Provider)(nil)

// New returns a mock provider, or an error if Latency is negative or
// FailureRate is not between 0 and 1.
func New(opts Options) (*Provider, error) {
	if opts.Latency < 0 {
		return nil, fmt.Errorf("mock: latency must not be negative, got %s", opts.Latency)
	}
	if math.IsNaN(opts.FailureRate) || opts.FailureRate < 0 || opts.FailureRate > 1 {
		return nil, fmt.Errorf("mock: failure rate must be between 0 and 1, got %v", opts.FailureRate)
	}
	return &Provider{
		latency:     opts.Latency,
		failureRate: opts.FailureRate,
		words:       strings.Fields(vocabulary),
		classify:    llm.NewClassifier("mock", ""),
		rng:         rand.New(rand.NewPCG(uint64(opts.Seed), 0x7469647967617465)), // "tidygate"
		flaky:       make(map[uint64]int),
	}, nil
}

// Chat returns the deterministic reply to the request.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	if err := p.prepare(ctx, req.Model, chatHash(req)); err != nil {
		return domain.ChatResponse{}, err
	}
	return p.reply(req)
}

// ChatStream emits the deterministic reply word by word, then a final chunk
// with the finish reason and the usage.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	if err := p.prepare(ctx, req.Model, chatHash(req)); err != nil {
		return domain.ChatResponse{}, err
	}
	resp, err := p.reply(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	if resp.Blocks == nil {
		if err := emitWords(resp.Content, func(w string) error { return emit(domain.ChatChunk{Delta: w}) }); err != nil {
			return domain.ChatResponse{}, err
		}
	}
	for i, b := range resp.Blocks {
		if err := emitBlock(i, b, emit); err != nil {
			return domain.ChatResponse{}, err
		}
	}
	usage := resp.Usage
	if err := emit(domain.ChatChunk{Index: max(len(resp.Blocks)-1, 0), FinishReason: resp.FinishReason, Usage: &usage}); err != nil {
		return domain.ChatResponse{}, err
	}
	return resp, nil
}

// emitWords hands text to emit word by word, each word with the space
// before it; the pieces are slices of text, so streaming allocates nothing
// per word.
func emitWords(text string, emit func(string) error) error {
	for start := 0; start < len(text); {
		end := strings.IndexByte(text[start+1:], ' ')
		if end < 0 {
			end = len(text)
		} else {
			end += start + 1
		}
		if err := emit(text[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// emitBlock streams content block i: its start, then its text, reasoning
// or arguments in pieces, then a reasoning block's signature.
func emitBlock(i int, b domain.Block, emit func(domain.ChatChunk) error) error {
	start := b
	start.Text, start.ToolCall.Arguments, start.Reasoning.Signature = "", "", ""
	if err := emit(domain.ChatChunk{Index: i, Start: &start}); err != nil {
		return err
	}
	switch b.Type {
	case domain.BlockText:
		return emitWords(b.Text, func(w string) error { return emit(domain.ChatChunk{Index: i, Delta: w}) })
	case domain.BlockReasoning:
		if err := emitWords(b.Text, func(w string) error { return emit(domain.ChatChunk{Index: i, ReasoningDelta: w}) }); err != nil {
			return err
		}
		return emit(domain.ChatChunk{Index: i, Signature: b.Reasoning.Signature})
	case domain.BlockToolCall:
		args := b.ToolCall.Arguments
		half := len(args) / 2
		for half > 0 && !utf8.RuneStart(args[half]) {
			half--
		}
		for _, piece := range []string{args[:half], args[half:]} {
			if piece == "" {
				continue
			}
			if err := emit(domain.ChatChunk{Index: i, ArgumentsDelta: piece}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Embed returns one deterministic unit vector per input.
func (p *Provider) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	dims := req.Dimensions
	if dims == 0 {
		dims = DefaultDimensions
	}
	if dims < 0 || dims > 65536 {
		return domain.EmbedResponse{}, domain.InvalidParam("dimensions", "dimensions must be between 1 and 65536")
	}
	// The gateway bounds requests first; the mock keeps its own bound so
	// that nothing that calls it directly can make it fill the memory.
	bounded := req
	bounded.Dimensions = dims
	if err := domain.DefaultEmbedLimits.Check(bounded); err != nil {
		return domain.EmbedResponse{}, err
	}
	keys := embedKeys(req)
	h := uint64(fnvOffset)
	for _, in := range keys {
		h = fnv(fnv(h, in), "\x00")
	}
	if err := p.prepare(ctx, req.Model, fnv(h, req.Model)); err != nil {
		return domain.EmbedResponse{}, err
	}
	backing := make([]float32, len(keys)*dims)
	vectors := make([][]float32, len(keys))
	for i, in := range keys {
		vectors[i] = unitVector(backing[i*dims:(i+1)*dims:(i+1)*dims], fnv(fnvOffset, in))
	}
	return domain.EmbedResponse{Model: req.Model, Vectors: vectors, Usage: domain.Usage{PromptTokens: llm.EstimateEmbedTokens(req)}}, nil
}

// embedKeys returns what each input's vector is derived from: its text,
// or its token ids in decimal, each followed by a comma.
func embedKeys(req domain.EmbedRequest) []string {
	if len(req.Tokens) == 0 {
		return req.Inputs
	}
	keys := make([]string, len(req.Tokens))
	for i, ids := range req.Tokens {
		var b []byte
		for _, id := range ids {
			b = append(strconv.AppendInt(b, int64(id), 10), ',')
		}
		keys[i] = string(b)
	}
	return keys
}

// prepare waits the configured latency and applies the model's test hook
// and the random failures; key identifies the prompt for mock-flaky-N.
func (p *Provider) prepare(ctx context.Context, model string, key uint64) error {
	wait := p.latency
	if model == ModelSlow {
		wait += SlowDelay
	}
	if err := sleep(ctx, wait); err != nil {
		return p.classify.Transport(err)
	}
	switch model {
	case ModelError500:
		return p.classify.HTTP(http.StatusInternalServerError, nil, "simulated server error ("+model+")")
	case ModelError429:
		return p.classify.HTTP(http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, "simulated rate limit ("+model+")")
	case ModelError400:
		return p.classify.HTTP(http.StatusBadRequest, nil, "simulated invalid request ("+model+")")
	}
	if n, ok := strings.CutPrefix(model, ModelFlakyPrefix); ok {
		failures, err := strconv.Atoi(n)
		if err != nil || failures < 0 {
			return p.classify.Invalid("model %q: the number of failures after %q must be a whole number", model, ModelFlakyPrefix)
		}
		if p.flakyCall(key) <= failures {
			return p.classify.HTTP(http.StatusServiceUnavailable, nil, "simulated flaky failure ("+model+")")
		}
	}
	if p.failureRate > 0 && p.draw() < p.failureRate {
		return p.classify.HTTP(http.StatusServiceUnavailable, nil, "simulated random failure")
	}
	return nil
}

// flakyCall counts a call of the prompt identified by key and returns how
// many calls of it there have been.
func (p *Provider) flakyCall(key uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.flaky[key]; !seen && len(p.flaky) >= maxFlakyPrompts {
		clear(p.flaky)
	}
	p.flaky[key]++
	return p.flaky[key]
}

func (p *Provider) draw() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

// reply builds the deterministic answer to req: a tool call when the
// request calls for one (see toolCall), else text, JSON when a response
// format asks for it; after a reasoning block when thinking is enabled.
func (p *Provider) reply(req domain.ChatRequest) (domain.ChatResponse, error) {
	seed := fnv(fnvOffset, lastUserText(req.Messages))
	natural := minWords + int(seed%(maxWords-minWords+1))
	n, finish := natural, domain.FinishStop
	if req.MaxTokens > 0 && req.MaxTokens < natural {
		n, finish = req.MaxTokens, domain.FinishLength
	}
	text := p.sentence(seed, n)
	if said, ok := scripted(req.Messages); ok {
		text, n, finish = said, llm.EstimateTokens(said), domain.FinishStop
	}
	var blocks []domain.Block
	reasoning := 0
	if req.Thinking.Enabled {
		thought := "The request is about " + p.sentence(seed^0x7468696e6b, 8) + "; answer it."
		reasoning = len(strings.Fields(thought))
		blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Text: thought,
			Reasoning: domain.Reasoning{Signature: "mocksig-" + strconv.FormatUint(fnv(seed, thought), 16)}})
	}
	call, ok, err := p.toolCall(req, seed)
	switch {
	case err != nil:
		return domain.ChatResponse{}, err
	case ok:
		blocks = append(blocks, domain.Block{Type: domain.BlockToolCall, ToolCall: call})
		text, finish, n = "", domain.FinishToolCalls, 1+llm.EstimateTokens(call.Arguments)
	case req.ResponseFormat.Type != domain.FormatText:
		if text, err = p.structured(req.ResponseFormat, seed, text); err != nil {
			return domain.ChatResponse{}, err
		}
		finish, n = domain.FinishStop, llm.EstimateTokens(text)
		blocks = append(blocks, domain.TextBlock(text))
	default:
		blocks = append(blocks, domain.TextBlock(text))
	}
	if !req.Thinking.Enabled && !ok {
		blocks = nil // a text answer: Content says it all
	}
	usage := llm.EstimateUsage(req, "")
	usage.CompletionTokens, usage.ReasoningTokens = n+reasoning, reasoning
	if read, write, ok := cached(req.Messages); ok {
		usage.CacheReadTokens, usage.CacheWriteTokens = read, write
		c := usage.Classes()
		usage.CacheReadTokens, usage.CacheWriteTokens = c.CacheRead, c.CacheWrite
	}
	return domain.ChatResponse{
		ID:           "mockcmpl-" + strconv.FormatUint(seed, 16),
		Model:        req.Model,
		Content:      text,
		Blocks:       blocks,
		FinishReason: finish,
		Usage:        usage,
		Created:      time.Now(),
	}, nil
}

// sentence returns n words picked by seed.
func (p *Provider) sentence(seed uint64, n int) string {
	var b strings.Builder
	b.Grow(n * 8)
	state := seed
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.words[splitmix(&state)%uint64(len(p.words))])
	}
	return b.String()
}

// ToolDirective starts the directive that makes the mock call a tool:
// "[[tool:NAME]]" in the last user message calls tool NAME with arguments
// generated from its JSON Schema, "[[tool:NAME {…}]]" with the given
// arguments object.
const ToolDirective = "[[tool:"

// toolCall decides whether the answer is a tool call, and builds it: when
// tool_choice requires one (the named tool, or the first), or when the last
// message is the user's and its text holds the tool directive for one of
// the request's tools. A message of tool results never asks for a tool, so
// an agent's loop ends with a text answer.
func (p *Provider) toolCall(req domain.ChatRequest, seed uint64) (domain.ToolCall, bool, error) {
	if len(req.Tools) == 0 || req.ToolChoice.Mode == domain.ToolChoiceNone {
		return domain.ToolCall{}, false, nil
	}
	name, args := "", ""
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceTool:
		name = req.ToolChoice.Name
	case domain.ToolChoiceRequired:
		name = req.Tools[0].Name
	}
	if n, a, ok := directive(req.Messages); ok && (name == "" || name == n) {
		name, args = n, a
	}
	if name == "" {
		return domain.ToolCall{}, false, nil
	}
	var tool *domain.Tool
	for i := range req.Tools {
		if req.Tools[i].Name == name {
			tool = &req.Tools[i]
		}
	}
	if tool == nil {
		return domain.ToolCall{}, false, p.classify.Invalid("the tool directive names %q, which is not among the request's tools", name)
	}
	if args == "" {
		v, err := generate(tool.Parameters, p.words, seed)
		if err != nil {
			return domain.ToolCall{}, false, p.classify.Invalid("tool %q: its parameters are not a JSON Schema: %v", name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return domain.ToolCall{}, false, p.classify.Invalid("tool %q: %v", name, err)
		}
		args = string(b)
	}
	return domain.ToolCall{ID: "toolu_mock_" + strconv.FormatUint(fnv(seed, name), 16), Name: name, Arguments: args}, true, nil
}

// directive finds the tool directive in the text of the last message when
// the user wrote it and it holds no tool results.
func directive(msgs []domain.Message) (name, args string, ok bool) {
	last, _ := lastTurn(msgs)
	if last == nil || last.Role != domain.RoleUser || hasToolResult(last.Blocks) {
		return "", "", false
	}
	_, rest, found := strings.Cut(last.Content, ToolDirective)
	if !found {
		return "", "", false
	}
	body, _, found := strings.Cut(rest, "]]")
	if !found {
		return "", "", false
	}
	name, args, _ = strings.Cut(strings.TrimSpace(body), " ")
	args = strings.TrimSpace(args)
	if args != "" && !json.Valid([]byte(args)) {
		args = ""
	}
	return name, args, name != ""
}

// lastTurn returns the last message that is not a system or developer
// message (agents send those mid-conversation), and the text of the tool
// results it holds ("" when none).
func lastTurn(msgs []domain.Message) (*domain.Message, string) {
	for i := len(msgs) - 1; i >= 0; i-- {
		m := &msgs[i]
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			continue
		}
		var results []string
		for _, b := range m.Blocks {
			if b.Type == domain.BlockToolResult {
				results = append(results, domain.JoinText(b.ToolResult.Content))
			}
		}
		return m, strings.Join(results, "\n")
	}
	return nil, ""
}

// SayDirective starts the directive that sets the mock's text answer:
// "[[say:TEXT]]" in the last user message makes TEXT the answer.
const SayDirective = "[[say:"

// CacheDirective starts the directive that sets the mock's cache counts:
// "[[cache:READ,WRITE]]" in the last user message.
const CacheDirective = "[[cache:"

// cached returns the cache counts a cache directive in the last user
// message asks for.
func cached(msgs []domain.Message) (read, write int, ok bool) {
	last, _ := lastTurn(msgs)
	if last == nil || last.Role != domain.RoleUser {
		return 0, 0, false
	}
	_, rest, found := strings.Cut(last.Content, CacheDirective)
	if !found {
		return 0, 0, false
	}
	body, _, found := strings.Cut(rest, "]]")
	r, w, _ := strings.Cut(body, ",")
	read, errRead := strconv.Atoi(strings.TrimSpace(r))
	write, errWrite := strconv.Atoi(strings.TrimSpace(w))
	if !found || errRead != nil || errWrite != nil || read < 0 || write < 0 {
		return 0, 0, false
	}
	return read, write, true
}

// maxEcho bounds how much of a tool result the mock's answer quotes.
const maxEcho = 500

// scripted returns the text answer the conversation dictates, if any: the
// text of a say directive, or, after tool results, "Tool result: " and the
// start of their text, so that an agent's tool loop shows what the tool did.
func scripted(msgs []domain.Message) (string, bool) {
	last, results := lastTurn(msgs)
	if last == nil || (last.Role != domain.RoleUser && last.Role != domain.RoleTool) {
		return "", false
	}
	if hasToolResult(last.Blocks) {
		if len(results) > maxEcho {
			cut := maxEcho
			for cut > 0 && !utf8.RuneStart(results[cut]) {
				cut--
			}
			results = results[:cut] + "…"
		}
		return "Tool result: " + results, true
	}
	if _, rest, found := strings.Cut(last.Content, SayDirective); found {
		if text, _, found := strings.Cut(rest, "]]"); found && text != "" {
			return text, true
		}
	}
	return "", false
}

func hasToolResult(blocks []domain.Block) bool {
	for _, b := range blocks {
		if b.Type == domain.BlockToolResult {
			return true
		}
	}
	return false
}

// structured returns the answer as JSON: an instance of the schema, or an
// object holding the text.
func (p *Provider) structured(f domain.ResponseFormat, seed uint64, text string) (string, error) {
	var v any = map[string]string{"answer": text}
	if f.Type == domain.FormatJSONSchema {
		var err error
		if v, err = generate(f.Schema, p.words, seed); err != nil {
			return "", p.classify.Invalid("response_format: the schema is not JSON Schema: %v", err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", p.classify.Invalid("response_format: %v", err)
	}
	return string(b), nil
}

// lastUserText returns the content of the last user message, or of the
// last message when there is no user message.
func lastUserText(msgs []domain.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == domain.RoleUser {
			return msgs[i].Content
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return msgs[len(msgs)-1].Content
}

// chatHash identifies a chat prompt (model and every message) for mock-flaky-N.
func chatHash(req domain.ChatRequest) uint64 {
	h := fnv(fnvOffset, req.Model)
	for _, m := range req.Messages {
		h = fnv(fnv(fnv(h, string(m.Role)), "\x00"), m.Content)
		h = fnv(h, "\x00")
	}
	return h
}

// unitVector fills v with pseudo-random values derived from seed and scales
// it to unit length.
func unitVector(v []float32, seed uint64) []float32 {
	state := seed
	var norm float64
	for i := range v {
		x := float64(splitmix(&state)>>11)/(1<<53)*2 - 1
		v[i] = float32(x)
		norm += x * x
	}
	if norm == 0 {
		v[0], norm = 1, 1
	}
	scale := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * scale)
	}
	return v
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FNV-1a, 64 bits, over a string without converting it to bytes.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// splitmix advances state and returns the next SplitMix64 output.
func splitmix(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
