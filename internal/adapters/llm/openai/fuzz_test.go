package openai_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
)

// FuzzOpenAIStream serves the fuzzed bytes as the body of a streamed chat
// completion: the adapter must not panic, and must return either an
// upstream failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzOpenAIStream.
func FuzzOpenAIStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL, openai.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeStream(t, up, p, "text/event-stream", body, "gpt-4o-mini")
	})
}

// FuzzOpenAINativeStream serves the fuzzed bytes as the event stream of a
// passed-through chat completion or Responses call: the adapter must not
// panic, and must return a classified failure or whole events with a
// consistent count.
func FuzzOpenAINativeStream(f *testing.F) {
	f.Add(false, []byte("data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"))
	f.Add(true, []byte("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"m\"}}\n\n"+
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"+
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"))
	f.Add(true, []byte("event: error\ndata: {\"type\":\"error\",\"message\":\"boom\"}\n\n"))
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL, openai.Options{})
	f.Fuzz(func(t *testing.T, responses bool, body []byte) {
		d := domain.DialectOpenAIChat
		if responses {
			d = domain.DialectOpenAIResponses
		}
		llmtest.ServeNative(t, up, p, d, `{"model":"gpt","stream":true}`, body)
	})
}
