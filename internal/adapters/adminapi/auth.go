package adminapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
)

// authenticate admits requests with "Authorization: Bearer <admin key>" or
// a bearer token of the identity provider (single sign-on).
// Failed attempts are counted per client address: the failure past the
// limit is refused with 429, and so is every request of the address after
// it until its window ends, before any lookup.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientaddr.Of(r)
		if err := h.throttle.Check(addr); err != nil {
			h.writeError(w, r, err)
			return
		}
		if err := httpin.SingleHeaders(r.Header, "Authorization", reasonHeader); err != nil {
			h.writeError(w, r, err)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		var a domain.Actor
		var err error
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			err = &domain.Error{Kind: domain.KindUnauthenticated, Code: "missing_admin_key",
				Message: "send an admin key in the Authorization header: 'Authorization: Bearer tga-…'"}
		} else {
			a, err = h.authenticateSecret(r, strings.TrimSpace(token))
		}
		if err != nil {
			h.writeError(w, r, h.throttle.Failed(r.Context(), addr, err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	})
}

// authenticateSecret returns the actor behind a bearer secret: a token of
// the identity provider when it has a JWT's shape, else an admin key.
func (h *handler) authenticateSecret(r *http.Request, secret string) (domain.Actor, error) {
	if domain.LooksLikeJWT(secret) {
		return h.svc.AuthenticateToken(r.Context(), secret)
	}
	return h.svc.AuthenticateAdminKey(r.Context(), secret)
}
