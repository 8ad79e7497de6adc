package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
)

// signInPage shows the sign-in form, starting an anonymous session for its
// CSRF token when the browser has none.
func (h *handler) signInPage(w http.ResponseWriter, r *http.Request) {
	s, ok := h.sessions.read(r)
	if ok && s.signedIn() {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	if !ok {
		var err error
		if s, err = h.sessions.start(domain.Actor{}); err != nil {
			h.fail(w, r, session{}, err)
			return
		}
		h.sessions.write(w, r, s)
	}
	h.render(w, r, s, http.StatusOK, "sign-in", "Sign in", h.signOnName)
}

// signIn checks an admin key and starts the administrator's session. Failed
// attempts are counted per client address: the failure past the limit is
// refused, and so is every attempt of the address after it until its
// window ends, before the key is looked at.
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	addr := clientaddr.Of(r)
	s, ok := h.sessions.read(r)
	if err := h.throttle.Check(addr); err != nil {
		h.signInFailed(w, r, s, tooManySignIns(err))
		return
	}
	if !ok {
		h.fail(w, r, session{}, &domain.Error{Kind: domain.KindForbidden, Code: "csrf_token_invalid",
			Message: "Your sign-in form has expired or cookies are off. Reload the sign-in page and try again."})
		return
	}
	if !h.parseForm(w, r, s) {
		return
	}
	key := strings.TrimSpace(r.PostFormValue("admin_key"))
	if key == "" {
		h.signInFailed(w, r, s, domain.InvalidParam("admin_key", "Enter an admin key (it starts with %s).", domain.AdminKeyPrefix))
		return
	}
	a, err := h.svc.AuthenticateAdminKey(r.Context(), key)
	if err != nil {
		if domain.KindOf(err) == domain.KindUnauthenticated {
			err = &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_admin_key", Message: "That admin key is not valid."}
		}
		h.signInFailed(w, r, s, tooManySignIns(h.throttle.Failed(r.Context(), addr, err)))
		return
	}
	signed, err := h.sessions.start(a)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.sessions.write(w, r, signed)
	h.log.Info("console sign-in", "actor", a.String())
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

// signInFailed shows the sign-in form again with what went wrong; errors
// that are not the administrator's go to the error page.
func (h *handler) signInFailed(w http.ResponseWriter, r *http.Request, s session, err error) {
	var de *domain.Error
	if !errors.As(err, &de) || statusOf(de) >= http.StatusInternalServerError || de.Kind == domain.KindRateLimited {
		h.fail(w, r, s, err)
		return
	}
	h.renderView(w, r, s, view{Title: "Sign in", Nav: "sign-in", Problem: de.Message, Status: statusOf(de), Data: h.signOnName})
}

// signOut ends the session.
func (h *handler) signOut(w http.ResponseWriter, r *http.Request) {
	s, ok := h.sessions.read(r)
	if ok && !h.parseForm(w, r, s) {
		return
	}
	h.sessions.clear(w, r)
	http.Redirect(w, r, Prefix+"/sign-in", http.StatusSeeOther)
}

// tooManySignIns words the throttle's refusal of an address for a person,
// keeping its kind, code and Retry-After; any other error is returned as
// it is.
func tooManySignIns(err error) error {
	de, ok := errors.AsType[*domain.Error](err)
	if !ok || de.Code != auththrottle.CodeTooManyFailures {
		return err
	}
	return &domain.Error{Kind: de.Kind, Code: de.Code, RetryAfter: de.RetryAfter,
		Message: "Too many failed sign-ins from this address; try again later."}
}
