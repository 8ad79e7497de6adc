package adminapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// Codes of KindInvalid errors that need a status other than 400.
const (
	codeTooLarge         = "request_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeMethodNotAllowed = "method_not_allowed"
)

// errorBody is the OpenAI-style error response.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// statusOf is the admin API's one table from error kind (and the few codes
// that need their own status) to HTTP status and error type.
func statusOf(de *domain.Error) (int, string) {
	switch de.Kind {
	case domain.KindInvalid:
		switch de.Code {
		case domain.CodeVersionMismatch:
			return http.StatusPreconditionFailed, "invalid_request_error"
		case codeTooLarge:
			return http.StatusRequestEntityTooLarge, "invalid_request_error"
		case codeUnsupportedMedia:
			return http.StatusUnsupportedMediaType, "invalid_request_error"
		case codeMethodNotAllowed:
			return http.StatusMethodNotAllowed, "invalid_request_error"
		}
		return http.StatusBadRequest, "invalid_request_error"
	case domain.KindUnauthenticated:
		return http.StatusUnauthorized, "authentication_error"
	case domain.KindForbidden:
		return http.StatusForbidden, "permission_error"
	case domain.KindNotFound:
		return http.StatusNotFound, "invalid_request_error"
	case domain.KindRateLimited:
		return http.StatusTooManyRequests, "rate_limit_error"
	case domain.KindUnavailable:
		return http.StatusServiceUnavailable, "server_error"
	}
	return http.StatusInternalServerError, "server_error"
}

// writeError answers with the error's status and error object, and logs it;
// an unclassified error's cause goes to the log only.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var de *domain.Error
	if !errors.As(err, &de) || statusIsInternal(de) {
		h.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		de = &domain.Error{Kind: domain.KindInternal, Code: "internal_error", Message: "the server had an error while processing the request"}
	} else {
		h.log.Info("admin request refused", "method", r.Method, "path", r.URL.Path, "kind", de.Kind.String(), "code", de.Code)
	}
	status, typ := statusOf(de)
	if de.Kind == domain.KindRateLimited || de.Kind == domain.KindUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(max((de.RetryAfter+time.Second-1)/time.Second, 1)), 10))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tidygate-admin"`)
	}
	msg := de.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	h.writeJSON(w, status, errorBody{Error: errorObject{Message: msg, Type: typ, Param: nullable(de.Param), Code: nullable(de.Code)}})
}

func statusIsInternal(de *domain.Error) bool {
	s, _ := statusOf(de)
	return s == http.StatusInternalServerError
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
