package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
)

// Codes of KindInvalid errors that this package raises itself and that need a
// status other than 400.
const (
	codeTooLarge         = "request_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeRequestTimeout   = "request_timeout"
	codeMethodNotAllowed = "method_not_allowed"
	codeAuditReason      = "audit_reason_required" // raised by the gateway
)

// auditReasonHeader carries the caller's stated reason for a call.
const auditReasonHeader = "X-Audit-Reason"

// problem is a failure as the client sees it: an HTTP status and an OpenAI
// error object, plus what the response headers and the log need.
type problem struct {
	kind       domain.Kind
	status     int
	typ        string // OpenAI error type
	code       string
	param      string
	message    string
	retryAfter time.Duration // > 0: send Retry-After
	final      bool          // tell the OpenAI SDKs not to retry (X-Should-Retry: false)
}

// problemOf is the one table from domain error kind to HTTP status and OpenAI
// error object. Anything that is not a *domain.Error is an internal error,
// whose cause goes to the log only.
func problemOf(err error, requestID string) problem {
	var de *domain.Error
	if !errors.As(err, &de) {
		de = &domain.Error{Kind: domain.KindInternal}
	}
	p := problem{kind: de.Kind, code: de.Code, param: de.Param, message: de.Message}
	as := func(status int, typ, defaultCode string) {
		p.status, p.typ = status, typ
		if p.code == "" {
			p.code = defaultCode
		}
	}
	switch de.Kind {
	case domain.KindInvalid:
		status := http.StatusBadRequest
		switch de.Code {
		case codeTooLarge:
			status = http.StatusRequestEntityTooLarge
		case codeUnsupportedMedia:
			status = http.StatusUnsupportedMediaType
		case codeRequestTimeout:
			status = http.StatusRequestTimeout
		case codeMethodNotAllowed:
			status = http.StatusMethodNotAllowed
		case codeAuditReason:
			p.message += "; send it in the " + auditReasonHeader + " header"
		}
		as(status, "invalid_request_error", "")
	case domain.KindUnauthenticated:
		as(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key")
	case domain.KindForbidden:
		as(http.StatusForbidden, "permission_error", "model_not_allowed")
	case domain.KindNotFound:
		as(http.StatusNotFound, "invalid_request_error", "") // the error names what was not found (model_not_found, …)
	case domain.KindBudgetExceeded:
		as(http.StatusTooManyRequests, "insufficient_quota", "budget_exceeded")
		p.final = true // the budget does not recover within the SDKs' retry window
	case domain.KindRateLimited:
		as(http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded")
		p.retryAfter = max(de.RetryAfter, time.Second)
	case domain.KindUnavailable:
		as(http.StatusServiceUnavailable, "server_error", "service_unavailable")
		p.retryAfter = max(de.RetryAfter, time.Second)
	case domain.KindUpstream:
		as(http.StatusBadGateway, "server_error", "upstream_error")
	default:
		p = problem{kind: domain.KindInternal, status: http.StatusInternalServerError, typ: "server_error",
			code:    "internal_error",
			message: "The server had an error while processing your request; quote request id " + requestID + " if you report it"}
	}
	if p.message == "" {
		p.message = http.StatusText(p.status)
	}
	p.message = clip(p.message)
	return p
}

// maxMessageLen bounds an error's message, and the error in its log line,
// in bytes. A message may quote what the client sent (a model's name, a
// role, a block's type), and neither an answer nor a log line may grow
// with that.
const maxMessageLen = 1024

// clip returns s cut to maxMessageLen bytes at a character boundary, with
// "…" where it was cut.
func clip(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfterSeconds renders d for the Retry-After header: whole seconds,
// rounded up, at least one.
func retryAfterSeconds(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}

// errorEnvelope is the OpenAI error response body.
type errorEnvelope struct {
	Error errorObject `json:"error"`
}

// errorObject is the OpenAI error object; param and code are null when empty.
type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (p problem) body() errorEnvelope {
	return errorEnvelope{Error: errorObject{Message: p.message, Type: p.typ, Param: nullable(p.param), Code: nullable(p.code)}}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError answers a failed request with its status, headers and error
// object in the request's dialect, and logs the failure.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeOf(r)
	if ex.restate != nil {
		err = ex.restate(err)
	}
	p := problemOf(err, ex.id)
	var body any = p.body()
	if ex.dialect == dialectAnthropic {
		p = anthropicProblemOf(err, ex.id)
		body = anthError(p, ex.id)
	}
	hdr := w.Header()
	if p.retryAfter > 0 {
		hdr.Set("Retry-After", retryAfterSeconds(p.retryAfter))
	}
	if p.final {
		hdr.Set("X-Should-Retry", "false")
	}
	if p.status == http.StatusUnauthorized {
		hdr.Set("WWW-Authenticate", `Bearer realm="tidygate"`)
	}
	h.logFailure(r, p, err)
	h.writeJSON(w, p.status, body)
}

// logFailure logs a failed request once, at a level that says whose problem
// it is: the client's (info), an outage or the provider's (warn), or a bug
// (error). Neither keys nor prompt text are logged; the cause is, because
// only the log ever sees it.
func (h *handler) logFailure(r *http.Request, p problem, err error, extra ...slog.Attr) {
	ex := exchangeOf(r)
	level := slog.LevelInfo
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody is waiting for this answer.
	case p.status >= http.StatusInternalServerError && p.kind == domain.KindInternal:
		level = slog.LevelError
	case p.status >= http.StatusInternalServerError:
		level = slog.LevelWarn
	}
	attrs := append(logAttrs(r, ex, p.status), slog.String("kind", p.kind.String()), slog.String("code", p.code))
	if ex.caller.KeyID != "" {
		attrs = append(attrs, slog.String("key_id", ex.caller.KeyID))
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", clip(err.Error())))
	}
	if r.Context().Err() != nil {
		attrs = append(attrs, slog.Bool("client_gone", true))
	}
	h.log.LogAttrs(r.Context(), level, "request failed", append(attrs, extra...)...)
}
