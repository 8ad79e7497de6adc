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
// hash of each input, of req.Dimensions (default 256) dimensions.
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
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

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
	return p.reply(req), nil
}

// ChatStream emits the deterministic reply word by word, then a final chunk
// with the finish reason and the usage.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	if err := p.prepare(ctx, req.Model, chatHash(req)); err != nil {
		return domain.ChatResponse{}, err
	}
	resp := p.reply(req)
	// Every chunk is a slice of the reply: streaming allocates nothing per word.
	for start := 0; start < len(resp.Content); {
		end := strings.IndexByte(resp.Content[start+1:], ' ')
		if end < 0 {
			end = len(resp.Content)
		} else {
			end += start + 1
		}
		if err := emit(domain.ChatChunk{Delta: resp.Content[start:end]}); err != nil {
			return domain.ChatResponse{}, err
		}
		start = end
	}
	usage := resp.Usage
	if err := emit(domain.ChatChunk{FinishReason: resp.FinishReason, Usage: &usage}); err != nil {
		return domain.ChatResponse{}, err
	}
	return resp, nil
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
	if err := domain.DefaultEmbedLimits.Check(domain.EmbedRequest{Inputs: req.Inputs, Dimensions: dims}); err != nil {
		return domain.EmbedResponse{}, err
	}
	h := uint64(fnvOffset)
	for _, in := range req.Inputs {
		h = fnv(fnv(h, in), "\x00")
	}
	if err := p.prepare(ctx, req.Model, fnv(h, req.Model)); err != nil {
		return domain.EmbedResponse{}, err
	}
	backing := make([]float32, len(req.Inputs)*dims)
	vectors := make([][]float32, len(req.Inputs))
	tokens := 0
	for i, in := range req.Inputs {
		vectors[i] = unitVector(backing[i*dims:(i+1)*dims:(i+1)*dims], fnv(fnvOffset, in))
		tokens += llm.EstimateTokens(in)
	}
	return domain.EmbedResponse{Model: req.Model, Vectors: vectors, Usage: domain.Usage{PromptTokens: tokens}}, nil
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

// reply builds the deterministic answer to req.
func (p *Provider) reply(req domain.ChatRequest) domain.ChatResponse {
	seed := fnv(fnvOffset, lastUserText(req.Messages))
	natural := minWords + int(seed%(maxWords-minWords+1))
	n, finish := natural, "stop"
	if req.MaxTokens > 0 && req.MaxTokens < natural {
		n, finish = req.MaxTokens, "length"
	}
	var b strings.Builder
	b.Grow(n * 8)
	state := seed
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.words[splitmix(&state)%uint64(len(p.words))])
	}
	usage := llm.EstimateUsage(req, "")
	usage.CompletionTokens = n
	return domain.ChatResponse{
		ID:           "mockcmpl-" + strconv.FormatUint(seed, 16),
		Model:        req.Model,
		Content:      b.String(),
		FinishReason: finish,
		Usage:        usage,
		Created:      time.Now(),
	}
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
