package main

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

const agentKey = "tg-agents-test-key-0123456789abcdef"

// agentStack is tidygate's whole call path in one process: the HTTP API,
// the gateway, the mock provider and in-memory ledger, key store and call log.
type agentStack struct {
	url    string
	svc    *gateway.Service
	log    *memory.CallLog
	ledger *memory.Ledger
	caller domain.Caller
}

func newAgentStack(t *testing.T) *agentStack {
	t.Helper()
	models := domain.DefaultModels()
	models[0].MaxOutputTokens = 64_000
	cat, err := domain.NewCatalogue(models)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mock.New(mock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &agentStack{log: memory.NewCallLog(), ledger: memory.NewLedger(),
		caller: domain.Caller{User: "ada", Team: "eng", Budgets: []domain.Budget{
			{Scope: domain.ScopeUser, ScopeID: "ada", Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}}}}
	keys := memory.NewKeyStore()
	s.caller.KeyID = keys.Add(agentKey, s.caller)
	s.url, s.svc = serveGateway(t, gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"mock": p},
		Keys: keys, Ledger: s.ledger, CallLog: s.log}, gateway.Options{})
	return s
}

// serveGateway serves tidygate's HTTP API over a gateway built of deps,
// until the test ends, and returns its URL and the gateway.
func serveGateway(t *testing.T, deps gateway.Deps, opts gateway.Options) (string, *gateway.Service) {
	t.Helper()
	svc, err := gateway.NewService(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(svc, httpapi.Options{}))
	t.Cleanup(srv.Close)
	return srv.URL, svc
}

func (s *agentStack) anthropic() anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL(s.url), option.WithAPIKey(agentKey),
		option.WithHeader("X-Audit-Reason", "sdk test"), option.WithMaxRetries(0))
}

// lastRecord returns the call log's last record and checks that it is a
// settled call with its audit reason and usage.
func (s *agentStack) lastRecord(t *testing.T) domain.CallRecord {
	t.Helper()
	recs := s.log.Records()
	if len(recs) == 0 {
		t.Fatal("no call was recorded")
	}
	r := recs[len(recs)-1]
	if r.Outcome != domain.OutcomeOK || r.AuditReason != "sdk test" || r.User != "ada" ||
		r.Usage.PromptTokens == 0 || r.Usage.CompletionTokens == 0 || r.Cost() == 0 {
		t.Errorf("record = %+v", r)
	}
	return r
}

var globTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "Glob", Description: anthropic.String("find files"),
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"pattern": map[string]any{"type": "string"}},
		Required: []string{"pattern"}}}}

func TestAnthropicSDKThroughTidygate(t *testing.T) {
	s := newAgentStack(t)
	client := s.anthropic()
	ctx := context.Background()
	hello := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello there"))}

	t.Run("messages", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "mock-chat", MaxTokens: 1024, Messages: hello,
			System: []anthropic.TextBlockParam{{Text: "Be brief."}}})
		if err != nil {
			t.Fatal(err)
		}
		if msg.Role != "assistant" || len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text == "" ||
			msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 || msg.Model != "mock-chat" {
			t.Errorf("message = %s", msg.RawJSON())
		}
		r := s.lastRecord(t)
		if r.Usage.PromptTokens != int(msg.Usage.InputTokens) || r.Usage.CompletionTokens != int(msg.Usage.OutputTokens) {
			t.Errorf("recorded usage %+v; the client saw %+v", r.Usage, msg.Usage)
		}
	})

	t.Run("stream", func(t *testing.T) {
		acc := accumulate(t, client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "mock", MaxTokens: 1024, Messages: hello}))
		if len(acc.Content) != 1 || acc.Content[0].Text == "" || acc.StopReason != anthropic.StopReasonEndTurn || acc.Usage.OutputTokens == 0 {
			t.Errorf("accumulated %+v", acc)
		}
		r := s.lastRecord(t)
		if !r.Stream || r.Usage.CompletionTokens != int(acc.Usage.OutputTokens) || r.Usage.PromptTokens != int(acc.Usage.InputTokens) {
			t.Errorf("recorded %+v; the client saw %+v", r, acc.Usage)
		}
	})

	t.Run("tools", func(t *testing.T) {
		ask := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("find the docs [[tool:Glob]]"))}
		params := anthropic.MessageNewParams{Model: "mock-chat", MaxTokens: 1024, Messages: ask, Tools: []anthropic.ToolUnionParam{globTool}}
		acc := accumulate(t, client.Messages.NewStreaming(ctx, params))
		if acc.StopReason != anthropic.StopReasonToolUse || len(acc.Content) != 1 || acc.Content[0].Type != "tool_use" {
			t.Fatalf("accumulated %+v", acc)
		}
		use := acc.Content[0].AsToolUse()
		if use.Name != "Glob" || !strings.Contains(string(use.Input), `"pattern":`) {
			t.Errorf("tool use = %+v (input %s)", use, use.Input)
		}
		params.Messages = append(params.Messages, acc.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "README.md", false)))
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if msg.StopReason != anthropic.StopReasonEndTurn || msg.Content[0].Text == "" {
			t.Errorf("after the tool result: %s", msg.RawJSON())
		}
		s.lastRecord(t)
	})

	t.Run("thinking", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "mock-chat", MaxTokens: 4096, Messages: hello,
			Thinking: anthropic.ThinkingConfigParamOfEnabled(1024)})
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Content) != 2 || msg.Content[0].Type != "thinking" || msg.Content[0].Signature == "" || msg.Content[1].Type != "text" {
			t.Errorf("message = %s", msg.RawJSON())
		}
	})

	t.Run("images", func(t *testing.T) {
		png := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nnot really"))
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "mock-chat", MaxTokens: 256, Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("what is this?"), anthropic.NewImageBlockBase64("image/png", png),
				anthropic.NewImageBlock(anthropic.URLImageSourceParam{URL: "https://example.com/cat.png"}))}})
		if err != nil {
			t.Fatal(err)
		}
		if msg.Content[0].Text == "" {
			t.Errorf("message = %s", msg.RawJSON())
		}
		if r := s.lastRecord(t); r.Usage.PromptTokens < len(png)/4 {
			t.Errorf("the image did not count: usage %+v", r.Usage)
		}
	})

	t.Run("count_tokens", func(t *testing.T) {
		n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "mock-chat", Messages: hello,
			Tools: []anthropic.MessageCountTokensToolUnionParam{{OfTool: globTool.OfTool}}})
		if err != nil {
			t.Fatal(err)
		}
		if n.InputTokens < 5 {
			t.Errorf("input tokens = %d", n.InputTokens)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "no-such-model", MaxTokens: 5, Messages: hello})
		var apiErr *anthropic.Error
		if !asAnthropicError(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.RawJSON(), `"not_found_error"`) {
			t.Errorf("err = %v", err)
		}
		noReason := anthropic.NewClient(option.WithBaseURL(s.url), option.WithAPIKey(agentKey), option.WithMaxRetries(0))
		_, err = noReason.Messages.New(ctx, anthropic.MessageNewParams{Model: "mock-chat", MaxTokens: 5, Messages: hello})
		if !asAnthropicError(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.RawJSON(), "X-Audit-Reason") {
			t.Errorf("err = %v", err)
		}
	})

	// Every call settled: nothing is left reserved, and what was spent is
	// what the call log recorded.
	if err := s.svc.Settled(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := s.ledger.Report(ctx, s.caller, time.Now().Add(-time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var recorded domain.Micros
	for _, r := range s.log.Records() {
		recorded += r.Cost()
	}
	if len(rep.Budgets) != 1 || rep.Budgets[0].Reserved != 0 || rep.Budgets[0].Spent != recorded || recorded == 0 {
		t.Errorf("budgets %+v; recorded cost %d", rep.Budgets, recorded)
	}
}

func asAnthropicError(err error, target **anthropic.Error) bool {
	e, ok := err.(*anthropic.Error) //nolint:errorlint // the SDK returns it unwrapped
	if ok {
		*target = e
	}
	return ok
}

// accumulate reads a stream to its end into the message it carries.
func accumulate(t *testing.T, stream *ssestream.Stream[anthropic.MessageStreamEventUnion]) anthropic.Message {
	t.Helper()
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return acc
}

// TestAnthropicSDKListsModels pages through the key's models with the
// Anthropic SDK, one a page, and gets one, as the SDK's models API does
// against Anthropic.
func TestAnthropicSDKListsModels(t *testing.T) {
	s := newAgentStack(t)
	client := s.anthropic()
	ctx := context.Background()
	var ids []string
	pager := client.Models.ListAutoPaging(ctx, anthropic.ModelListParams{Limit: anthropic.Int(1)})
	for pager.Next() {
		ids = append(ids, pager.Current().ID)
	}
	if err := pager.Err(); err != nil || strings.Join(ids, " ") != "mock-chat mock mock-embed" {
		t.Fatalf("listed %v, %v; want every model and alias, one a page", ids, err)
	}
	m, err := client.Models.Get(ctx, "mock", anthropic.ModelGetParams{})
	if err != nil || m.ID != "mock" || m.Type != "model" || !m.CreatedAt.Equal(time.Unix(0, 0)) {
		t.Fatalf("get: %+v, %v", m, err)
	}
	_, err = client.Models.Get(ctx, "gpt-nope", anthropic.ModelGetParams{})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.RequestID == "" {
		t.Fatalf("an unknown model: %v; want a 404 the SDK reads a request id from", err)
	}
}
