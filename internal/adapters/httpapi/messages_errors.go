package httpapi

import (
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// dialect is the API a request speaks, which decides the shape of its
// errors, where its key may come from and how large its body may be.
type dialect int

// The inbound dialects.
const (
	dialectOpenAI    dialect = iota // chat completions, embeddings, models, usage
	dialectAnthropic                // the Anthropic Messages API
	dialectResponses                // the OpenAI Responses API: OpenAI's errors, the agents' body limit
)

// dialectOf tells a request's dialect from its path, so that even a 404 or
// 405 under /v1/messages answers in Anthropic's shape. The models list is
// both APIs' path: a request for it that carries anthropic-version, as
// every Anthropic SDK's does, speaks Anthropic's dialect.
func dialectOf(r *http.Request) dialect {
	path := r.URL.Path
	switch {
	case under(path, "/v1/messages"):
		return dialectAnthropic
	case under(path, "/v1/responses"):
		return dialectResponses
	case under(path, "/v1/models") && r.Header.Get("Anthropic-Version") != "":
		return dialectAnthropic
	}
	return dialectOpenAI
}

// under reports whether path is prefix or a path below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// anthropicRequestIDHeader is Anthropic's name for the request id, which
// its API sends on every response and its SDKs read (request-id); in this
// dialect it carries the same id as X-Request-Id.
const anthropicRequestIDHeader = "Request-Id"

// anthropicProblemOf is the Anthropic dialect's one table from domain error
// kind to HTTP status and Anthropic error type. It starts from the OpenAI
// table's reading of the error (message, code, Retry-After, whether a retry
// can help) and replaces what Anthropic's clients see.
func anthropicProblemOf(err error, requestID string) problem {
	p := problemOf(err, requestID)
	switch p.kind {
	case domain.KindInvalid:
		p.typ = "invalid_request_error"
		if p.status == http.StatusRequestEntityTooLarge {
			p.typ = "request_too_large"
		}
	case domain.KindUnauthenticated:
		p.status, p.typ = http.StatusUnauthorized, "authentication_error"
	case domain.KindForbidden:
		p.status, p.typ = http.StatusForbidden, "permission_error"
	case domain.KindNotFound:
		p.status, p.typ = http.StatusNotFound, "not_found_error"
	case domain.KindBudgetExceeded, domain.KindRateLimited:
		p.status, p.typ = http.StatusTooManyRequests, "rate_limit_error"
	case domain.KindUnavailable:
		p.status, p.typ = statusOverloaded, "overloaded_error"
	case domain.KindUpstream:
		p.status, p.typ = http.StatusBadGateway, "api_error"
	default:
		p.status, p.typ = http.StatusInternalServerError, "api_error"
	}
	return p
}

// statusOverloaded is Anthropic's status for a service that is temporarily
// overloaded; its clients retry it.
const statusOverloaded = 529

// anthErrorJSON is Anthropic's error response body and error event.
type anthErrorJSON struct {
	Type      string        `json:"type"`
	Error     anthErrorBody `json:"error"`
	RequestID string        `json:"request_id,omitempty"`
}

type anthErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func anthError(p problem, requestID string) anthErrorJSON {
	return anthErrorJSON{Type: "error", Error: anthErrorBody{Type: p.typ, Message: p.message}, RequestID: requestID}
}

// anthropicKey returns the key of an Anthropic-dialect request, from
// x-api-key or Authorization: Bearer; both present and different is a
// client error, never a silent choice.
func anthropicKey(r *http.Request) (string, error) {
	apiKey := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	auth := r.Header.Get("Authorization")
	if apiKey == "" {
		return bearerToken(auth)
	}
	if auth != "" {
		bearer, err := bearerToken(auth)
		if err != nil || bearer != apiKey {
			return "", &domain.Error{Kind: domain.KindInvalid, Code: "conflicting_api_keys",
				Message: "x-api-key and Authorization carry different keys; send one key"}
		}
	}
	return apiKey, nil
}
