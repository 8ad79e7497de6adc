// Package console is the administration console at /console: HTML pages
// rendered on the server with html/template, in front of the same
// administration service as the admin API. Administrators sign in with an
// admin key or, when one is configured, at the identity provider (OpenID
// Connect); the session is a signed cookie, every form carries a CSRF
// token tied to the session, and every form that changes something an
// audit reason. The pages work without JavaScript.
package console

import (
	"cmp"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
)

// Prefix is where the console is mounted.
const Prefix = "/console"

// maxFormBytes bounds a form's body; the console's forms are small.
const maxFormBytes = 64 << 10

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options tune the console.
type Options struct {
	Logger *slog.Logger
	// SessionSecret signs the session cookies and CSRF tokens, at least 32
	// bytes. Empty: a random secret for this process, so that sessions end
	// when it restarts and are not valid on other replicas.
	SessionSecret []byte
	SessionTTL    time.Duration // how long a sign-in lasts; default 8h
	// Throttle counts failed sign-ins per client address; share the admin
	// API's so that an address cannot double its attempts. Required.
	Throttle *auththrottle.Throttle
	// MinReasonLen and MaxReasonLen bound an audit reason on the forms
	// (the service decides); defaults 3 and 1000.
	MinReasonLen, MaxReasonLen int
	Now                        func() time.Time // default time.Now
	// SignOn, when set, lets administrators sign in at the identity
	// provider, which the sign-in page names SignOnName (such as its
	// host); the callback is CallbackPath.
	SignOn     SignOn
	SignOnName string
}

// handler serves the console.
type handler struct {
	svc       *admin.Service
	log       *slog.Logger
	sessions  *sessions
	throttle  *auththrottle.Throttle
	minReason int
	maxReason int
	pages     map[string]*template.Template
	signOn    SignOn // nil: admin keys only
	// signOnName names the identity provider on the sign-in page; empty
	// without one.
	signOnName string
}

// NewHandler returns the console on svc, to be served under Prefix. It
// fails without a throttle, and when no random session secret can be made.
func NewHandler(svc *admin.Service, opts Options) (http.Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.Throttle == nil {
		return nil, errors.New("console: missing the throttle of failed sign-ins")
	}
	if opts.MinReasonLen <= 0 {
		opts.MinReasonLen = 3
	}
	if opts.MaxReasonLen <= 0 {
		opts.MaxReasonLen = 1000
	}
	secret := opts.SessionSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	if len(secret) < 32 {
		return nil, errors.New("the console's session secret must be at least 32 bytes")
	}
	h := &handler{svc: svc, log: opts.Logger, throttle: opts.Throttle, minReason: opts.MinReasonLen, maxReason: opts.MaxReasonLen,
		sessions: &sessions{secret: secret, ttl: opts.SessionTTL, now: opts.Now}, pages: parsePages(), signOn: opts.SignOn}
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded above
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"/sign-in", h.signInPage)
	mux.HandleFunc("POST "+Prefix+"/sign-in", h.signIn)
	mux.HandleFunc("POST "+Prefix+"/sign-out", h.signOut)
	if h.signOn != nil {
		h.signOnName = cmp.Or(opts.SignOnName, "the identity provider")
		mux.HandleFunc("GET "+startPath, h.startSignOn)
		mux.HandleFunc("GET "+CallbackPath, h.finishSignOn)
	}
	mux.HandleFunc("GET "+Prefix+"/{$}", h.signedIn(h.home))
	mux.HandleFunc("GET "+Prefix+"/keys", h.signedIn(h.keysPage))
	mux.HandleFunc("POST "+Prefix+"/keys", h.changing(h.createKey))
	mux.HandleFunc("GET "+Prefix+"/keys/{id}", h.signedIn(h.keyPage))
	mux.HandleFunc("POST "+Prefix+"/keys/{id}/revoke", h.changing(h.revokeKey))
	mux.HandleFunc("POST "+Prefix+"/keys/{id}/rotate", h.changing(h.rotateKey))
	mux.HandleFunc("POST "+Prefix+"/keys/{id}/expiry", h.changing(h.setExpiry))
	mux.HandleFunc("GET "+Prefix+"/teams", h.signedIn(h.teamsPage))
	mux.HandleFunc("GET "+Prefix+"/users", h.signedIn(h.usersPage))
	h.routePrincipals(mux)
	mux.HandleFunc("GET "+Prefix+"/budgets", h.signedIn(h.budgetsPage))
	mux.HandleFunc("GET "+Prefix+"/usage", h.signedIn(h.usagePage))
	mux.HandleFunc("GET "+Prefix+"/audit", h.signedIn(h.auditPage))
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s, _ := h.sessions.read(r)
		h.fail(w, r, s, &domain.Error{Kind: domain.KindNotFound, Code: "unknown_page",
			Message: "There is no console page " + r.Method + " " + r.URL.Path + "."})
	})
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	return securityHeaders(mux), nil
}

// securityHeaders sets the headers every console response carries: no
// caching (pages show keys and secrets), no framing, no inline script, no
// sniffing, no referrer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// signedIn serves page to signed-in administrators and sends everyone else
// to the sign-in page.
func (h *handler) signedIn(page func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok, err := h.current(r)
		switch {
		case err != nil:
			h.fail(w, r, session{}, err)
		case !ok:
			http.Redirect(w, r, Prefix+"/sign-in", http.StatusSeeOther)
		default:
			page(w, r, s)
		}
	}
}

// changing serves a form that changes something: the administrator must be
// signed in, and the form must carry the session's CSRF token.
func (h *handler) changing(change func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok, err := h.current(r)
		if err != nil {
			h.fail(w, r, session{}, err)
			return
		}
		if !ok {
			h.fail(w, r, session{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "not_signed_in",
				Message: "You are not signed in, or your session has ended. Sign in and submit the form again."})
			return
		}
		if !h.parseForm(w, r, s) {
			return
		}
		change(w, r, s)
	}
}

// current returns the request's signed-in session, with the scopes the
// administration service gives the administrator now (admin.Service.Recheck):
// a session whose admin key has been revoked has ended. It reports false
// when nobody is signed in, and an error when the check itself failed.
func (h *handler) current(r *http.Request) (session, bool, error) {
	s, ok := h.sessions.read(r)
	if !ok || !s.signedIn() {
		return session{}, false, nil
	}
	a, err := h.svc.Recheck(r.Context(), s.actor())
	switch {
	case domain.KindOf(err) == domain.KindUnauthenticated:
		h.log.Info("console session ended: its admin key was revoked", "actor", s.actor().String())
		return session{}, false, nil
	case err != nil:
		return session{}, false, err
	}
	s.Scopes = s.Scopes[:0]
	for _, sc := range a.Scopes {
		s.Scopes = append(s.Scopes, string(sc))
	}
	return s, true, nil
}

// parseForm reads a posted form of at most maxFormBytes and checks its CSRF
// token against s; it answers the request itself when either fails.
func (h *handler) parseForm(w http.ResponseWriter, r *http.Request, s session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, s, &domain.Error{Kind: domain.KindInvalid, Code: "invalid_form", Message: "The form could not be read: " + err.Error()})
		return false
	}
	if !h.sessions.checkCSRF(s, r) {
		h.fail(w, r, s, &domain.Error{Kind: domain.KindForbidden, Code: "csrf_token_invalid",
			Message: "This form did not come from your current console session (its CSRF token is missing or stale). Reload the page and submit it again."})
		return false
	}
	return true
}
