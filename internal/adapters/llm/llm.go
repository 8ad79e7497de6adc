// Package llm holds the rules every provider adapter below it applies the
// same way: how an upstream failure becomes a domain error kind, how a
// feature a provider cannot serve is refused by name (Unsupported), how a
// streamed answer's content blocks are passed on and assembled (Stream),
// which finish reason a provider's stop reason is, and how tokens are
// estimated when a provider does not count them.
//
// The adapters themselves (mock, openai, anthropic, bedrock) never import
// each other; they import this package.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
)

// maxDetail caps how much of a provider's own error message is quoted, so
// that an HTML error page does not become a client-facing message.
const maxDetail = 300

// Classifier turns one provider's failures into *domain.Error values whose
// messages name the provider and never contain its secret.
type Classifier struct {
	provider string
	secret   string
}

// NewClassifier returns a Classifier for the named provider. Secret (an API
// key, possibly empty) is removed from every message the provider sends back.
func NewClassifier(provider, secret string) Classifier {
	return Classifier{provider: provider, secret: secret}
}

// HTTP classifies an HTTP error answer by its status: 429 is
// domain.KindRateLimited with the Retry-After delay from header; 400, 404,
// 413 and 422 are domain.KindInvalid (the provider refused the request
// itself) quoting detail, the provider's own message; 401 and 403 are
// domain.KindUpstream saying the provider rejected tidygate's credentials;
// anything else is domain.KindUpstream.
func (c Classifier) HTTP(status int, header http.Header, detail string) *domain.Error {
	detail = c.clean(detail)
	if detail == "" {
		detail = http.StatusText(status)
	}
	cause := fmt.Errorf("HTTP %d", status) // the message quotes the detail
	switch status {
	case http.StatusTooManyRequests:
		return &domain.Error{Kind: domain.KindRateLimited, RetryAfter: RetryAfter(header, time.Now()), Err: cause,
			Message: fmt.Sprintf("%s is rate-limiting tidygate: %s", c.provider, detail)}
	case http.StatusUnauthorized, http.StatusForbidden:
		// The provider's text may quote part of the key: keep it out entirely.
		return &domain.Error{Kind: domain.KindUpstream, Err: cause,
			Message: fmt.Sprintf("%s rejected tidygate's credentials (HTTP %d)", c.provider, status)}
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return &domain.Error{Kind: domain.KindInvalid, Err: cause,
			Message: fmt.Sprintf("%s rejected the request: %s", c.provider, detail)}
	}
	return &domain.Error{Kind: domain.KindUpstream, Err: cause,
		Message: fmt.Sprintf("%s failed with HTTP %d: %s", c.provider, status, detail)}
}

// Transport classifies a failure that produced no HTTP answer: a deadline
// (the gateway's per-attempt timeout) or a network timeout, a cancellation,
// or a connection error. All are domain.KindUpstream; err stays the cause,
// so errors.Is(result, context.DeadlineExceeded) still holds.
func (c Classifier) Transport(err error) *domain.Error {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return domain.Wrap(domain.KindUpstream, err, c.provider+" did not answer in time")
	case errors.Is(err, context.Canceled):
		return domain.Wrap(domain.KindUpstream, err, "the call to "+c.provider+" was cancelled")
	}
	return domain.Wrap(domain.KindUpstream, err, "the call to "+c.provider+" failed before it got an answer")
}

// Failure classifies an error that is not an HTTP error answer: Transport
// when the call got no answer (a context error, a *url.Error or a
// net.Error), else Malformed.
func (c Classifier) Failure(err error) *domain.Error {
	var urlErr *url.Error
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &urlErr) || errors.As(err, &netErr) {
		return c.Transport(err)
	}
	return c.Malformed(err)
}

// Reported classifies a failure the provider reported inside an answer
// whose HTTP status said success, such as an error event in a stream:
// domain.KindUpstream quoting the provider's message.
func (c Classifier) Reported(detail string) *domain.Error {
	detail = c.clean(detail)
	return domain.Errorf(domain.KindUpstream, "%s reported a failure: %s", c.provider, detail)
}

// Malformed classifies an answer tidygate could not use: a body that is not
// the documented JSON, a stream that breaks off or lacks its end.
func (c Classifier) Malformed(err error) *domain.Error {
	return domain.Wrap(domain.KindUpstream, err, c.provider+" sent a response tidygate could not read")
}

// Invalid returns a domain.KindInvalid error for a request this provider
// cannot serve, found before calling it.
func (c Classifier) Invalid(format string, args ...any) *domain.Error {
	return domain.Errorf(domain.KindInvalid, "%s: %s", c.provider, fmt.Sprintf(format, args...))
}

// clean makes a provider's message fit to show: valid UTF-8, one line,
// bounded, and without the secret.
func (c Classifier) clean(s string) string {
	if c.secret != "" {
		s = strings.ReplaceAll(s, c.secret, "[redacted]")
	}
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// RetryAfter reads the delay a rate-limited answer asks for from its
// Retry-After header (seconds or an HTTP date) or, failing that, from the
// retry-after-ms header some providers send. It returns zero when neither
// is present or parsable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			if secs > 0 && secs < 24*60*60 {
				return time.Duration(secs * float64(time.Second))
			}
			return 0
		}
		if at, err := http.ParseTime(v); err == nil && at.After(now) {
			return at.Sub(now)
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 24*60*60*1000 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	return 0
}

// TextOnly refuses, as domain.KindInvalid naming the feature, a request
// that asks for more than text (tools, images, reasoning, a structured
// response format) from a provider adapter that translates text only.
func (c Classifier) TextOnly(req domain.ChatRequest) error {
	if f := req.Feature(); f != "" {
		return c.Unsupported(f, "use a model of another provider")
	}
	return nil
}

// NoSeedOrPenalties refuses, by name, a seed, a presence penalty or a
// frequency penalty (the first the request holds), for a provider adapter
// whose API has none of them: domain.KindInvalid with code
// unsupported_feature, its param the parameter's name.
func (c Classifier) NoSeedOrPenalties(req domain.ChatRequest) error {
	var param string
	switch {
	case req.Seed != nil:
		param = "seed"
	case req.PresencePenalty != nil:
		param = "presence_penalty"
	case req.FrequencyPenalty != nil:
		param = "frequency_penalty"
	default:
		return nil
	}
	e := c.Unsupported(param, "its API has no "+param+": use a model of another provider, or leave it out")
	e.Param = param
	return e
}

// TextInputs refuses an embeddings request of token ids for a provider
// whose embedding models take text only: domain.KindInvalid with code
// unsupported_feature, naming input.
func (c Classifier) TextInputs(req domain.EmbedRequest) error {
	if len(req.Tokens) == 0 {
		return nil
	}
	e := c.Unsupported("token-array input", "send input as text (a string or an array of strings)")
	e.Param = "input"
	return e
}

// ClampEffort maps a reasoning effort onto the levels Anthropic's effort
// setting takes (low, medium, high, xhigh, max): none is no setting at all,
// as a model that is not asked to think does not reason; minimal is low.
func ClampEffort(effort string) string {
	switch effort {
	case domain.EffortNone:
		return ""
	case domain.EffortMinimal:
		return domain.EffortLow
	}
	return effort
}

// Unsupported refuses a request for a feature this provider cannot serve:
// domain.KindInvalid with code unsupported_feature, its message naming the
// provider and the feature, and hint, if any, saying what to do instead.
func (c Classifier) Unsupported(feature, hint string) *domain.Error {
	msg := fmt.Sprintf("%s: tidygate cannot send %s to this provider", c.provider, feature)
	if hint != "" {
		msg += "; " + hint
	}
	return &domain.Error{Kind: domain.KindInvalid, Code: "unsupported_feature", Message: msg}
}
