package contract

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// ProviderSubject is a provider under test and the upstream model names
// that select its behaviour.
type ProviderSubject struct {
	Provider ports.Provider
	// ChatModel answers chat completions, streamed or not, with some text.
	ChatModel string
	// EmbedModel answers embeddings.
	EmbedModel string
	// SlowModel never answers on its own: a call of it ends only when its
	// context does, so that the suite can see the provider honour the
	// cancellation (a provider that ignores it makes the test hang until
	// go test's own timeout fails it).
	SlowModel string
}

// TestProvider checks what the gateway relies on from every provider: a
// chat answer with text, a finish reason and usage; a stream whose deltas
// concatenate to the assembled content, with the usage on a chunk and in
// the response; one vector per embedding input; and every call ending with
// an error wrapping context.Canceled when its context is cancelled.
// newSubject returns a fresh provider for each subtest.
func TestProvider(t *testing.T, newSubject func(t *testing.T) ProviderSubject) {
	t.Run("Chat", func(t *testing.T) {
		s := newSubject(t)
		resp, err := s.Provider.Chat(context.Background(), chatRequest(s.ChatModel))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(resp.Content) == "" || resp.FinishReason == "" {
			t.Errorf("answer %+v; want text and a finish reason", resp)
		}
		checkUsage(t, resp.Usage)
	})

	t.Run("StreamConcatenatesToTheAnswer", func(t *testing.T) {
		s := newSubject(t)
		var text strings.Builder
		var usage *domain.Usage
		chunks := 0
		resp, err := s.Provider.ChatStream(context.Background(), chatRequest(s.ChatModel), func(c domain.ChatChunk) error {
			chunks++
			text.WriteString(c.Delta)
			if c.Usage != nil {
				usage = c.Usage
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if chunks < 2 {
			t.Errorf("%d chunks; want the text in pieces and a final chunk", chunks)
		}
		if text.String() == "" || text.String() != resp.Content {
			t.Errorf("deltas concatenate to %q; the answer is %q", text.String(), resp.Content)
		}
		if resp.FinishReason == "" {
			t.Error("the streamed answer has no finish reason")
		}
		checkUsage(t, resp.Usage)
		if usage == nil || *usage != resp.Usage {
			t.Errorf("usage on the chunks %v; want the answer's %+v", usage, resp.Usage)
		}
	})

	t.Run("StreamStopsAtTheFirstEmitError", func(t *testing.T) {
		s := newSubject(t)
		stop := errors.New("the client went away")
		calls := 0
		_, err := s.Provider.ChatStream(context.Background(), chatRequest(s.ChatModel), func(domain.ChatChunk) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("error %v after %d emits; want the emit's error after one", err, calls)
		}
	})

	t.Run("Embed", func(t *testing.T) {
		s := newSubject(t)
		inputs := []string{"first input", "second input"}
		resp, err := s.Provider.Embed(context.Background(), domain.EmbedRequest{Model: s.EmbedModel, Inputs: inputs})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Vectors) != len(inputs) {
			t.Fatalf("%d vectors for %d inputs", len(resp.Vectors), len(inputs))
		}
		for i, v := range resp.Vectors {
			if len(v) == 0 || len(v) != len(resp.Vectors[0]) {
				t.Errorf("vector %d has %d dimensions; want as many as the first, %d", i, len(v), len(resp.Vectors[0]))
			}
		}
	})

	cancelled := map[string]func(ctx context.Context, s ProviderSubject) error{
		"Chat": func(ctx context.Context, s ProviderSubject) error {
			_, err := s.Provider.Chat(ctx, chatRequest(s.SlowModel))
			return err
		},
		"ChatStream": func(ctx context.Context, s ProviderSubject) error {
			_, err := s.Provider.ChatStream(ctx, chatRequest(s.SlowModel), func(domain.ChatChunk) error { return nil })
			return err
		},
		"Embed": func(ctx context.Context, s ProviderSubject) error {
			_, err := s.Provider.Embed(ctx, domain.EmbedRequest{Model: s.SlowModel, Inputs: []string{"x"}})
			return err
		},
	}
	for name, call := range cancelled {
		t.Run("CancelEnds"+name, func(t *testing.T) {
			s := newSubject(t)
			ctx, cancel := context.WithCancel(context.Background())
			go cancel() // during the call, or before it starts: either way it must end
			err := call(ctx, s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v; want one wrapping context.Canceled", err)
			}
		})
	}
}

// chatRequest is a short conversation with the output cap the gateway
// always sets.
func chatRequest(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, MaxTokens: 64, Messages: []domain.Message{
		{Role: domain.RoleSystem, Content: "Be brief."},
		{Role: domain.RoleUser, Content: "Say hello to the contract suite."},
	}}
}

// checkUsage fails the test unless usage counts both directions.
func checkUsage(t *testing.T, u domain.Usage) {
	t.Helper()
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 {
		t.Errorf("usage %+v; want prompt and completion tokens", u)
	}
}
