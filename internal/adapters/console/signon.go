package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
)

// SignOn is the identity provider's browser sign-in (OpenID Connect's
// authorization-code flow with state, nonce and PKCE) as the console uses
// it.
type SignOn interface {
	// StartSignIn returns the provider's URL to send the browser to and
	// the sign-in to keep until the browser comes back.
	StartSignIn() (authURL string, pending domain.SignIn, err error)
	// FinishSignIn checks the callback's state and code against pending
	// and returns the identity the provider vouches for: a
	// domain.KindUnauthenticated error for any mismatch or refusal, a
	// domain.KindUnavailable error while the provider cannot be reached.
	FinishSignIn(ctx context.Context, pending domain.SignIn, state, code string) (domain.Identity, error)
}

// CallbackPath is where the identity provider sends the browser back: the
// redirect URI to register with the provider is the console's public base
// URL (CONSOLE_BASE_URL) followed by it.
const CallbackPath = Prefix + "/auth/callback"

// startPath begins a sign-in at the identity provider.
const startPath = Prefix + "/auth/start"

// signInCookie holds the sign-in in progress between startPath and
// CallbackPath, encrypted, for signInTTL. It is SameSite=Lax, unlike the
// session cookie: the browser comes back from the provider's site, and a
// Strict cookie would not be sent with that navigation.
const (
	signInCookie = "tidygate_console_sign_in"
	signInTTL    = 10 * time.Minute
)

// pendingSignIn is what signInCookie holds.
type pendingSignIn struct {
	SignIn  domain.SignIn `json:"s"`
	Expires int64         `json:"exp"`
}

// aead is the cipher of signInCookie: AES-256-GCM under a key derived from
// the session secret, so that the PKCE verifier and the nonce stay secret
// even from the browser that carries them.
func (m *sessions) aead() cipher.AEAD {
	block, _ := aes.NewCipher(m.mac("sign-in cookie key", "")) // an HMAC-SHA256 is 32 bytes: a valid AES-256 key
	c, _ := cipher.NewGCM(block)                               // GCM accepts every AES block
	return c
}

// writeSignIn keeps p in signInCookie until the browser comes back.
func (m *sessions) writeSignIn(w http.ResponseWriter, r *http.Request, p domain.SignIn) error {
	plain, _ := json.Marshal(pendingSignIn{SignIn: p, Expires: m.now().Add(signInTTL).Unix()}) // strings and a number always encode
	c := m.aead()
	nonce := make([]byte, c.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := c.Seal(nonce, nonce, plain, []byte(signInCookie))
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: Prefix + "/auth",
		MaxAge: int(signInTTL.Seconds()), HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// takeSignIn returns the sign-in in progress and removes its cookie, so
// that each is finished at most once; false when there is none, or it is
// forged or too old.
func (m *sessions) takeSignIn(w http.ResponseWriter, r *http.Request) (domain.SignIn, bool) {
	ck, err := r.Cookie(signInCookie)
	if err != nil {
		return domain.SignIn{}, false
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: Prefix + "/auth", MaxAge: -1,
		HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteLaxMode})
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	c := m.aead()
	if err != nil || len(sealed) < c.NonceSize() {
		return domain.SignIn{}, false
	}
	plain, err := c.Open(nil, sealed[:c.NonceSize()], sealed[c.NonceSize():], []byte(signInCookie))
	var p pendingSignIn
	if err != nil || json.Unmarshal(plain, &p) != nil || !m.now().Before(time.Unix(p.Expires, 0)) {
		return domain.SignIn{}, false
	}
	return p.SignIn, true
}

// startSignOn sends the browser to the identity provider.
func (h *handler) startSignOn(w http.ResponseWriter, r *http.Request) {
	s, ok := h.sessions.read(r)
	if ok && s.signedIn() {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	authURL, pending, err := h.signOn.StartSignIn()
	if err == nil {
		err = h.sessions.writeSignIn(w, r, pending)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// finishSignOn is the callback: the provider sends the browser back with
// a code, which is exchanged for the identity of the administrator; the
// roles of an identity that the role mapping gives no scope are refused.
// Failures count against the client address, as a wrong admin key does.
func (h *handler) finishSignOn(w http.ResponseWriter, r *http.Request) {
	addr := clientaddr.Of(r)
	if err := h.throttle.Check(addr); err != nil {
		h.fail(w, r, session{}, tooManySignIns(err))
		return
	}
	pending, started := h.sessions.takeSignIn(w, r)
	q := r.URL.Query()
	var err error
	var id domain.Identity
	switch {
	case q.Get("error") != "":
		why := q.Get("error")
		if d := q.Get("error_description"); d != "" {
			why += ": " + d
		}
		err = &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_refused",
			Message: "The identity provider did not sign you in (" + clip(why, 300) + ")."}
	case !started:
		err = &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_not_started",
			Message: "This browser has no sign-in in progress: it was started more than 10 minutes ago, in another browser, or with cookies off. Sign in again."}
	default:
		id, err = h.signOn.FinishSignIn(r.Context(), pending, q.Get("state"), q.Get("code"))
	}
	if err != nil {
		h.fail(w, r, session{}, tooManySignIns(h.throttle.Failed(r.Context(), addr, err)))
		return
	}
	a := h.svc.ActorOf(id)
	if len(a.Scopes) == 0 {
		h.log.Info("console sign-in refused: no mapped role", "actor", a.String())
		h.fail(w, r, session{}, &domain.Error{Kind: domain.KindForbidden, Code: "no_admin_role",
			Message: "The identity provider signed you in as " + id.Subject + ", but your account holds none of the roles that give access to the console. Ask the administrators of tidygate for one."})
		return
	}
	signed, err := h.sessions.start(a)
	if err != nil {
		h.fail(w, r, session{}, err)
		return
	}
	h.sessions.write(w, r, signed)
	h.log.Info("console sign-in", "actor", a.String())
	// A page, not a redirect: the browser arrived from the provider's
	// site, and it sends the SameSite=Strict session cookie only with a
	// navigation that starts on the console's own page.
	h.renderView(w, r, signed, view{Title: "Signed in", Nav: "signed-in", Status: http.StatusOK, Refresh: true})
}

// clip shortens s to at most n bytes, for text the browser brought.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
