package gateway_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// scriptedProvider answers from a script: errs[i] is the outcome of the i-th
// call (nil = success); calls beyond the script succeed.
type scriptedProvider struct {
	mu     sync.Mutex
	errs   []error
	calls  []domain.ChatRequest
	embeds int
}

func (p *scriptedProvider) next(req domain.ChatRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, req)
	if i := len(p.calls) - 1; i < len(p.errs) {
		return p.errs[i]
	}
	return nil
}

func (p *scriptedProvider) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func reply(req domain.ChatRequest) domain.ChatResponse {
	words := min(req.MaxTokens, 3)
	return domain.ChatResponse{
		Model: req.Model, Content: strings.TrimSpace(strings.Repeat("word ", words)), FinishReason: "stop",
		Usage: domain.Usage{PromptTokens: 10, CompletionTokens: words},
	}
}

func (p *scriptedProvider) Chat(_ context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	if err := p.next(req); err != nil {
		return domain.ChatResponse{}, err
	}
	return reply(req), nil
}

func (p *scriptedProvider) ChatStream(_ context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	if err := p.next(req); err != nil {
		return domain.ChatResponse{}, err
	}
	r := reply(req)
	for _, w := range strings.Fields(r.Content) {
		if err := emit(domain.ChatChunk{Delta: w + " "}); err != nil {
			return domain.ChatResponse{}, err
		}
	}
	u := r.Usage
	if err := emit(domain.ChatChunk{FinishReason: "stop", Usage: &u}); err != nil {
		return domain.ChatResponse{}, err
	}
	return r, nil
}

func (p *scriptedProvider) Embed(_ context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	p.mu.Lock()
	p.embeds++
	p.mu.Unlock()
	vecs := make([][]float32, len(req.Inputs))
	for i := range vecs {
		vecs[i] = []float32{1, 0}
	}
	return domain.EmbedResponse{Model: req.Model, Vectors: vecs, Usage: domain.Usage{PromptTokens: len(req.Inputs)}}, nil
}

// ledgerView is what a memory ledger did, as the gateway tests check it:
// the reservations settled and released, each ID once per call so that a
// repeat shows, those still held, and the total charged.
type ledgerView struct {
	settled, released, held []string
	spent                   domain.Micros
}

// seen returns what l did once svc's settlements so far were applied.
func seen(t *testing.T, svc *gateway.Service, l *memory.Ledger) ledgerView {
	t.Helper()
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatalf("Settled: %v", err)
	}
	var v ledgerView
	for id, e := range l.Endings() {
		for range e.Settles {
			v.settled = append(v.settled, id)
		}
		for range e.Releases {
			v.released = append(v.released, id)
		}
		if e.Held {
			v.held = append(v.held, id)
		}
		v.spent += e.Cost
	}
	slices.Sort(v.settled)
	slices.Sort(v.released)
	slices.Sort(v.held)
	return v
}

// limiterSpy is the in-process rate limiter, counting the holds it gives
// and the settlements it gets, so that a test can check that every call
// that was admitted settled its hold exactly once.
type limiterSpy struct {
	*ratelimit.Limiter
	mu             sync.Mutex
	admits         int
	settles        int
	held, used     int
	asked          int // the tokens of the last call that asked
	overSettlement bool
	settledGone    int // settlements asked for in a context that had ended
}

func newLimiterSpy(t *testing.T) *limiterSpy {
	s := &limiterSpy{Limiter: ratelimit.New()}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.admits != s.settles || s.overSettlement || s.settledGone > 0 {
			t.Errorf("rate limiter: %d holds admitted, %d settled (used beyond a hold: %v; %d in a context already ended); want each settled once, in a live context",
				s.admits, s.settles, s.overSettlement, s.settledGone)
		}
	})
	return s
}

func (s *limiterSpy) Admit(ctx context.Context, limits []domain.RateLimit, tokens int, now time.Time) (ports.RateHold, error) {
	h, err := s.Limiter.Admit(ctx, limits, tokens, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = tokens
	if err == nil {
		s.admits++
		s.held += h.Tokens
	}
	return h, err
}

func (s *limiterSpy) Settle(ctx context.Context, h ports.RateHold, used int) error {
	s.mu.Lock()
	s.settles++
	if ctx.Err() != nil { // a shared limiter would fail it: the hold stays until its window ends
		s.settledGone++
	}
	s.used += min(used, h.Tokens)
	s.overSettlement = s.overSettlement || used < 0
	s.mu.Unlock()
	return s.Limiter.Settle(ctx, h, used)
}

// totals returns the tokens held at admission and used at settlement, and
// the tokens the last call asked for.
func (s *limiterSpy) totals() (held, used, asked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.used, s.asked
}
