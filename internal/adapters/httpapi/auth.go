package httpapi

import (
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// authenticate admits requests that carry "Authorization: Bearer <key>" for
// a key the gateway accepts. The gateway decides; a key store that cannot
// answer yields 503, never 401, so clients do not discard a good key.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := bearerToken(r.Header.Get("Authorization"))
		if err == nil {
			exchangeOf(r).caller, err = h.gw.Authenticate(r.Context(), secret)
		}
		if err != nil {
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
