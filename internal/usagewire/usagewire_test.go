package usagewire_test

import (
	"encoding/json"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/usagewire"
)

func TestUsageObjects(t *testing.T) {
	cases := []struct {
		name                       string
		u                          domain.Usage
		chat, responses, anthropic string
	}{
		{"plain", domain.Usage{PromptTokens: 10, CompletionTokens: 5},
			`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}`,
			`{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}`,
			`{"input_tokens":10,"output_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}`},
		{"cached and reasoning", domain.Usage{PromptTokens: 100, CompletionTokens: 40, CacheReadTokens: 60, CacheWriteTokens: 30, ReasoningTokens: 25},
			`{"prompt_tokens":100,"completion_tokens":40,"total_tokens":140,"prompt_tokens_details":{"cached_tokens":60},"completion_tokens_details":{"reasoning_tokens":25}}`,
			`{"input_tokens":100,"input_tokens_details":{"cached_tokens":60},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":25},"total_tokens":140}`,
			`{"input_tokens":10,"output_tokens":40,"cache_creation_input_tokens":30,"cache_read_input_tokens":60}`},
		// A provider's inconsistent counts never make a detail exceed its
		// whole, nor count a token twice.
		{"inconsistent", domain.Usage{PromptTokens: 10, CompletionTokens: 4, CacheReadTokens: 8, CacheWriteTokens: 8, ReasoningTokens: 9},
			`{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":4}}`,
			`{"input_tokens":10,"input_tokens_details":{"cached_tokens":8},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":14}`,
			`{"input_tokens":0,"output_tokens":4,"cache_creation_input_tokens":2,"cache_read_input_tokens":8}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, w := range []struct {
				dialect string
				v       any
				want    string
			}{{"chat", usagewire.ChatOf(c.u), c.chat}, {"responses", usagewire.ResponsesOf(c.u), c.responses}, {"anthropic", usagewire.AnthropicOf(c.u), c.anthropic}} {
				got, err := json.Marshal(w.v)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != w.want {
					t.Errorf("%s:\n got %s\nwant %s", w.dialect, got, w.want)
				}
			}
		})
	}
}
