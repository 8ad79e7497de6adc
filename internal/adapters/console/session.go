package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// cookieName names the console's session cookie.
const cookieName = "tidygate_console"

// csrfField is the form field that carries the session's CSRF token.
const csrfField = "csrf_token"

// session is what the signed cookie holds: who signed in (nobody yet on the
// sign-in page), until when, and the random nonce the session's CSRF token
// is derived from. It never holds a secret.
type session struct {
	ActorKind string   `json:"k,omitempty"`
	ActorID   string   `json:"id,omitempty"`
	Scopes    []string `json:"s,omitempty"`
	Expires   int64    `json:"exp"`
	Nonce     string   `json:"n"`
}

// signedIn reports whether the session belongs to an administrator.
func (s session) signedIn() bool { return s.ActorID != "" }

// actor returns the administrator the session belongs to.
func (s session) actor() domain.Actor {
	a := domain.Actor{Kind: domain.ActorKind(s.ActorKind), ID: s.ActorID}
	for _, sc := range s.Scopes {
		a.Scopes = append(a.Scopes, domain.AdminScope(sc))
	}
	return a
}

// sessions signs and checks session cookies with a server-side secret.
type sessions struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// start returns a new session for a (the zero actor: nobody yet), with a
// fresh nonce, so that signing in never keeps the anonymous session's token.
func (m *sessions) start(a domain.Actor) (session, error) {
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return session{}, err
	}
	s := session{ActorKind: string(a.Kind), ActorID: a.ID, Expires: m.now().Add(m.ttl).Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce)}
	for _, sc := range a.Scopes {
		s.Scopes = append(s.Scopes, string(sc))
	}
	return s, nil
}

// mac is the signature of payload under the secret, for purpose.
func (m *sessions) mac(purpose, payload string) []byte {
	h := hmac.New(sha256.New, m.secret)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// encode renders s as a cookie value: its JSON and its signature.
func (m *sessions) encode(s session) string {
	b, _ := json.Marshal(s) // a struct of strings and numbers always encodes
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.mac("session", payload))
}

// decode returns the session of a cookie value, and false when the value is
// malformed, not signed with this secret, or expired.
func (m *sessions) decode(v string) (session, bool) {
	payload, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 4096 {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.mac("session", payload)) {
		return session{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return session{}, false
	}
	var s session
	if json.Unmarshal(b, &s) != nil || s.Nonce == "" || !m.now().Before(time.Unix(s.Expires, 0)) {
		return session{}, false
	}
	return s, true
}

// read returns the request's session, if it carries a valid one.
func (m *sessions) read(r *http.Request) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	return m.decode(c.Value)
}

// write sets the session cookie: HttpOnly, SameSite=Strict, Secure when
// the console is reached over HTTPS, expiring with the session.
func (m *sessions) write(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: m.encode(s), Path: Prefix, Expires: time.Unix(s.Expires, 0),
		MaxAge: int(time.Unix(s.Expires, 0).Sub(m.now()).Seconds()), HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteStrictMode})
}

// clear removes the session cookie.
func (m *sessions) clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteStrictMode})
}

// csrfToken is the synchronizer token of s's forms: tied to the session's
// nonce, so a token from another session (or none) is refused.
func (m *sessions) csrfToken(s session) string {
	return base64.RawURLEncoding.EncodeToString(m.mac("csrf", s.Nonce))
}

// checkCSRF reports whether the submitted form carries s's token.
func (m *sessions) checkCSRF(s session, r *http.Request) bool {
	got, err := base64.RawURLEncoding.DecodeString(r.PostFormValue(csrfField))
	return err == nil && hmac.Equal(got, m.mac("csrf", s.Nonce))
}

// overHTTPS reports whether the browser reached the console over HTTPS:
// directly, or through a proxy that says so. The answer only ever adds the
// Secure attribute, so a client that claims HTTPS falsely loses its own
// cookie and gains nothing.
func overHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
