package openai_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
)

// nativeStream passes a streamed chat completion with the client's body
// through p and returns the stream the client received and the answer.
func nativeStream(t *testing.T, p *openai.Provider, body string) (string, domain.NativeResponse) {
	t.Helper()
	var got strings.Builder
	resp, err := p.Native(context.Background(), domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: []byte(body), Stream: true,
		Model: "gpt-4o-mini", Answer: "alias"}, func(ev domain.NativeEvent) error {
		got.Write(ev.Raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got.String(), resp
}

// TestNativeStreamKeepsTheUsageTheClientDidNotAskFor passes a stream
// through for a client that did not ask for the usage: tidygate asks for it
// and charges by it, but the client gets neither the usage chunk (whose
// empty choices break clients that read choices[0]) nor "usage": null on
// the other chunks, as OpenAI would have sent the stream. A client that
// asked gets the upstream's chunks as they are.
func TestNativeStreamKeepsTheUsageTheClientDidNotAskFor(t *testing.T) {
	upstream := sse(chunk("Hel", ""), chunk("lo", "stop"), usageChunk)
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", upstream))
	p := newProvider(t, up.URL, openai.Options{})

	got, resp := nativeStream(t, p, `{"model":"m","stream":true,"messages":[]}`)
	up.Last(t).WantFields(t, `{"stream_options":{"include_usage":true}}`)
	want := sse(strings.Replace(chunk("Hel", ""), `,"usage":null`, "", 1), strings.Replace(chunk("lo", "stop"), `,"usage":null`, "", 1))
	if want = strings.ReplaceAll(want, `"model":"gpt-4o-mini"`, `"model":"alias"`); got != want {
		t.Errorf("the client received\n%s\nwant\n%s", got, want)
	}
	if !resp.Counted || resp.Usage != (domain.Usage{PromptTokens: 9, CompletionTokens: 2}) {
		t.Errorf("usage %+v, counted %v; want the usage chunk's", resp.Usage, resp.Counted)
	}

	got, resp = nativeStream(t, p, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	if want := strings.ReplaceAll(upstream, `"model":"gpt-4o-mini"`, `"model":"alias"`); got != want {
		t.Errorf("a client that asked for the usage received\n%s\nwant\n%s", got, want)
	}
	if !resp.Counted || resp.Usage.PromptTokens != 9 {
		t.Errorf("usage %+v, counted %v; want the usage chunk's", resp.Usage, resp.Counted)
	}
}

// toUpstream carries every request to the fake upstream at its host,
// wherever the request was addressed, so that an adapter for OpenAI's own
// API can be tested.
type toUpstream string

func (host toUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", string(host)
	return http.DefaultTransport.RoundTrip(r)
}

// TestTheOutputCapIsMaxCompletionTokensForOpenAI sends a request that sets
// no output cap, translated and passed through: OpenAI's API, whose
// reasoning models refuse max_tokens, gets the reserved cap as
// max_completion_tokens; a self-hosted server gets it as max_tokens, the
// field every OpenAI-compatible server takes.
func TestTheOutputCapIsMaxCompletionTokensForOpenAI(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", completion))
	client := &http.Client{Transport: toUpstream(strings.TrimPrefix(up.URL, "http://"))}
	for _, c := range []struct{ baseURL, field, not string }{
		{"", "max_completion_tokens", "max_tokens"},
		{"https://eu.api.openai.com/v1", "max_completion_tokens", "max_tokens"},
		{"http://ollama:11434/v1", "max_tokens", "max_completion_tokens"},
	} {
		p, err := openai.New(openai.Options{BaseURL: c.baseURL, APIKey: apiKey, HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		llmtest.ExpectOutputCap(t, up, p, c.field, c.not)
	}
}
