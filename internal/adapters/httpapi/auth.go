package httpapi

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
)

// authenticate admits requests that carry "Authorization: Bearer <key>"
// (or, in the Anthropic dialect, "x-api-key: <key>") for a key the gateway
// accepts. The gateway decides, and throttles the client addresses
// (clientaddr) that fail too often; a key store that cannot answer yields
// 503, never 401, so clients do not discard a good key. A refusal for a
// missing or bad key, or of a throttled address, is logged and counted
// (Options.Unauthenticated), never traced: there is no caller to record it
// against.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := httpin.SingleHeaders(r.Header, "Authorization", "X-Api-Key", auditReasonHeader)
		var secret string
		if err == nil && exchangeOf(r).dialect == dialectAnthropic {
			secret, err = anthropicKey(r)
		} else if err == nil {
			secret, err = bearerToken(r.Header.Get("Authorization"))
		}
		if err == nil {
			exchangeOf(r).caller, err = h.gw.Authenticate(r.Context(), secret, clientaddr.Of(r))
		}
		if err != nil {
			if de, ok := errors.AsType[*domain.Error](err); ok && (de.Kind == domain.KindUnauthenticated || de.Code == auththrottle.CodeTooManyFailures) {
				h.unauth.CountUnauthenticated(cmp.Or(de.Code, "unauthenticated"))
			}
			h.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken extracts the key from an Authorization header value.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", &domain.Error{Kind: domain.KindUnauthenticated, Code: "missing_api_key",
			Message: "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer <key>'"}
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key",
			Message: "The Authorization header must have the form 'Bearer <key>'"}
	}
	return token, nil
}
