package llm

import (
	"fmt"

	"github.com/tidygate/tidygate/internal/domain"
)

// Providers count tokens by class in two ways, and every adapter turns its
// provider's counts into a domain.Usage, whose PromptTokens counts every
// input token once and whose cache counts are parts of it:
//
//   - OpenAI (chat completions and the Responses API, and Azure OpenAI):
//     prompt_tokens (input_tokens) counts every input token, the cached
//     ones included; prompt_tokens_details.cached_tokens says how many of
//     them were read from the cache. OpenAI reports no cache writes.
//     completion_tokens_details.reasoning_tokens are part of
//     completion_tokens.
//   - Anthropic (the Messages API) and Bedrock (Converse): input_tokens
//     counts only the input that was neither read from nor written to the
//     cache; cache_read_input_tokens and cache_creation_input_tokens
//     (Bedrock: cacheReadInputTokens, cacheWriteInputTokens) come on top.
//     Thinking tokens are part of output_tokens and are not counted apart.
//
// Adding an OpenAI count's cached tokens to its prompt, or taking an
// Anthropic count's input_tokens for the whole prompt, would charge cache
// reads twice or miss them: UsageIncludingCache and UsageExcludingCache are
// the two conversions, each refusing counts that cannot be right.

// UsageIncludingCache converts counts in which prompt includes the cached
// tokens and completion includes the reasoning tokens (OpenAI's).
func UsageIncludingCache(prompt, cached, completion, reasoning int64) (domain.Usage, error) {
	switch {
	case prompt < 0 || completion < 0 || cached < 0 || reasoning < 0:
		return domain.Usage{}, fmt.Errorf("negative token counts: prompt %d (cached %d), completion %d (reasoning %d)", prompt, cached, completion, reasoning)
	case cached > prompt:
		return domain.Usage{}, fmt.Errorf("%d cached tokens of a prompt of %d", cached, prompt)
	case reasoning > completion:
		return domain.Usage{}, fmt.Errorf("%d reasoning tokens of a completion of %d", reasoning, completion)
	}
	return domain.Usage{PromptTokens: int(prompt), CompletionTokens: int(completion),
		CacheReadTokens: int(cached), ReasoningTokens: int(reasoning)}, nil
}

// UsageExcludingCache converts counts in which input excludes the tokens
// read from and written to the cache (Anthropic's and Bedrock's).
func UsageExcludingCache(input, cacheRead, cacheWrite, output int64) (domain.Usage, error) {
	if input < 0 || cacheRead < 0 || cacheWrite < 0 || output < 0 {
		return domain.Usage{}, fmt.Errorf("negative token counts: input %d, cache read %d, cache write %d, output %d", input, cacheRead, cacheWrite, output)
	}
	return domain.Usage{PromptTokens: int(input + cacheRead + cacheWrite), CompletionTokens: int(output),
		CacheReadTokens: int(cacheRead), CacheWriteTokens: int(cacheWrite)}, nil
}
