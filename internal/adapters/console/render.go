package console

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// pageNames are the templates/NAME.html files, each rendered inside
// templates/layout.html.
var pageNames = []string{"sign-in", "signed-in", "home", "keys", "key", "secret", "teams", "users", "principal", "budgets", "usage", "audit", "error"}

// funcs are the helpers the templates use.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"whenPtr": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"usd":       func(m domain.Micros) string { return m.String() },
	"join":      strings.Join,
	"hasPrefix": strings.HasPrefix,
	"navItems":  func() []navItem { return nav },
	"field":     func(id string, v view) reasonField { return reasonField{ID: id, Min: v.MinReason, Max: v.MaxReason} },
	"reasonFor": func(id string, v view, problem string) reasonField {
		return reasonField{ID: id, Min: v.MinReason, Max: v.MaxReason, Message: problem}
	},
	"fieldError": func(id, problem string) fieldError { return fieldError{ID: id, Message: problem} },
	"group": func(rows []groupView, name, members string) groupTable {
		return groupTable{Rows: rows, Name: name, Members: members}
	},
}

// navItem is one entry of the navigation.
type navItem struct{ Nav, Href, Label string }

// nav is the console's navigation, in order.
var nav = []navItem{
	{"keys", Prefix + "/keys", "Keys"},
	{"teams", Prefix + "/teams", "Teams"},
	{"users", Prefix + "/users", "Users"},
	{"budgets", Prefix + "/budgets", "Budgets and limits"},
	{"usage", Prefix + "/usage", "Usage"},
	{"audit", Prefix + "/audit", "Audit log"},
}

// reasonField is a form's audit reason input: its id prefix, the bounds
// of the reason's length, and the problem with the reason last sent.
type reasonField struct {
	ID       string
	Min, Max int
	Message  string
}

// fieldError is the problem with one form field (ID), shown beside it.
type fieldError struct{ ID, Message string }

// groupTable is the teams or users table.
type groupTable struct {
	Rows          []groupView
	Name, Members string
}

// parsePages parses every page with the layout. The templates are embedded,
// so a parse failure is a bug the package's tests catch.
func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// view is what every page's template gets.
type view struct {
	Title     string
	Nav       string // the navigation entry of this page
	Actor     string // who is signed in, kind:id; empty on the sign-in page
	CanWrite  bool
	CSRF      string
	MinReason int
	MaxReason int
	Problem   string // what went wrong, shown as an alert
	Status    int
	Refresh   bool // go on to the console's home page at once, without script
	Data      any
}

// render answers with the page name, filled with data, with status.
func (h *handler) render(w http.ResponseWriter, r *http.Request, s session, status int, name, title string, data any) {
	h.renderView(w, r, s, view{Title: title, Nav: name, Status: status, Data: data})
}

// renderView answers with v's page.
func (h *handler) renderView(w http.ResponseWriter, r *http.Request, s session, v view) {
	v.MinReason, v.MaxReason = h.minReason, h.maxReason
	if s.Nonce != "" {
		v.CSRF = h.sessions.csrfToken(s)
	}
	if s.signedIn() {
		v.Actor = s.actor().String()
		v.CanWrite = s.actor().May(domain.AdminWrite)
	}
	name := v.Nav
	if v.Problem != "" && name != "sign-in" {
		name = "error"
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, v); err != nil {
		h.log.Error("rendering a console page failed", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "The console could not render this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(v.Status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf is the console's one table from error kind to HTTP status.
func statusOf(de *domain.Error) int {
	switch de.Kind {
	case domain.KindInvalid:
		if de.Code == domain.CodeVersionMismatch {
			return http.StatusPreconditionFailed
		}
		return http.StatusBadRequest
	case domain.KindUnauthenticated:
		return http.StatusUnauthorized
	case domain.KindForbidden:
		return http.StatusForbidden
	case domain.KindNotFound:
		return http.StatusNotFound
	case domain.KindRateLimited:
		return http.StatusTooManyRequests
	case domain.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers with the error page: the error's status and message, which
// is shown to the administrator as an alert; an unclassified error's cause
// goes to the log only.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s session, err error) {
	var de *domain.Error
	if !errors.As(err, &de) || statusOf(de) == http.StatusInternalServerError {
		h.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		de = &domain.Error{Kind: domain.KindInternal, Message: "The server had an error while processing the request."}
	} else {
		h.log.Info("console request refused", "method", r.Method, "path", r.URL.Path, "kind", de.Kind.String(), "code", de.Code)
	}
	status := statusOf(de)
	if de.Kind == domain.KindRateLimited || de.Kind == domain.KindUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(max((de.RetryAfter+time.Second-1)/time.Second, 1)), 10))
	}
	msg := de.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	h.renderView(w, r, s, view{Title: http.StatusText(status), Nav: "error", Problem: msg, Status: status,
		Data: back(r)})
}

// back is where the error page's link returns to: the page the failed
// form was on.
func back(r *http.Request) string {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(p, Prefix+"/keys/"):
		return path.Dir(p)
	case r.Method == http.MethodPost && (strings.HasPrefix(p, Prefix+"/users/") || strings.HasPrefix(p, Prefix+"/teams/")):
		return strings.Join(strings.SplitN(p, "/", 5)[:4], "/") // the user's or team's page
	case p == Prefix+"/keys" || p == Prefix+"/sign-in":
		return p
	}
	return Prefix + "/"
}
