package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
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
		if err := singleHeaders(r.Header, "Authorization", reasonHeader); err != nil {
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

// singleHeaders refuses a request that sends any of the named headers more
// than once, as the model endpoints do: which of two admin keys acts, or
// which of two reasons the audit log keeps, would otherwise be a rule of
// this server's choosing (the first) that the client cannot see.
func singleHeaders(hdr http.Header, names ...string) error {
	for _, name := range names {
		if n := len(hdr.Values(name)); n > 1 {
			return &domain.Error{Kind: domain.KindInvalid, Code: "duplicate_header",
				Message: fmt.Sprintf("the %s header appears %d times; send it once", name, n)}
		}
	}
	return nil
}
