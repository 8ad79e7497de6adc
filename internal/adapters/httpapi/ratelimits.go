package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// setRateLimitHeaders sends the caller's rate limits, as the limiter
// reported them at admission, in the headers its dialect's clients read to
// pace themselves: OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}
// (reset as a duration, "1m0s", "12ms") or Anthropic's
// anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset} (reset as
// an RFC 3339 time). A limit the key does not have is not sent.
func setRateLimitHeaders(h http.Header, d dialect, l domain.RateLimits, now time.Time) {
	for _, a := range []struct {
		kind string
		a    domain.Allowance
	}{{"requests", l.Requests}, {"tokens", l.Tokens}} {
		if a.a.Limit <= 0 {
			continue
		}
		limit, remaining := strconv.Itoa(a.a.Limit), strconv.Itoa(a.a.Remaining)
		if d == dialectAnthropic {
			h.Set("anthropic-ratelimit-"+a.kind+"-limit", limit)
			h.Set("anthropic-ratelimit-"+a.kind+"-remaining", remaining)
			h.Set("anthropic-ratelimit-"+a.kind+"-reset", a.a.Reset.UTC().Format(time.RFC3339))
			continue
		}
		h.Set("x-ratelimit-limit-"+a.kind, limit)
		h.Set("x-ratelimit-remaining-"+a.kind, remaining)
		h.Set("x-ratelimit-reset-"+a.kind, max(a.a.Reset.Sub(now), 0).Round(time.Millisecond).String())
	}
}
