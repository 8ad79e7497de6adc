// Package adminapi is the admin API at /admin/v1: JSON over HTTP in front of
// the administration service, authenticated with admin keys, with
// OpenAI-style error objects and its own table from error kind to status.
package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
	"github.com/tidygate/tidygate/internal/jsonerr"
)

// Prefix is where the admin API is mounted.
const Prefix = "/admin/v1"

// reasonHeader carries the reason of an administrative change.
const reasonHeader = "X-Audit-Reason"

// reasonOf is the reason of the change r asks for, as its caller wrote it:
// UTF-8, or ISO-8859-1 as fetch clients send it (httpin.HeaderText).
func reasonOf(r *http.Request) string { return httpin.HeaderText(r.Header.Get(reasonHeader)) }

// maxBodyBytes bounds a request body; admin requests are small.
const maxBodyBytes = 1 << 20

// Options tune the handler.
type Options struct {
	Logger *slog.Logger
	// Throttle counts failed authentications per client address (share
	// the console's, so that an address cannot double its attempts by
	// switching); the failure past its limit, and every request of the
	// address after it until its window ends, is refused with 429.
	// Required.
	Throttle *auththrottle.Throttle
}

// handler serves the admin API.
type handler struct {
	svc      *admin.Service
	log      *slog.Logger
	throttle *auththrottle.Throttle
}

// NewHandler returns the admin API on svc, to be served under Prefix. It
// fails without a throttle.
func NewHandler(svc *admin.Service, opts Options) (http.Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Throttle == nil {
		return nil, errors.New("adminapi: missing the throttle of failed authentications")
	}
	h := &handler{svc: svc, log: opts.Logger, throttle: opts.Throttle}
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &domain.Error{Kind: domain.KindNotFound, Code: "unknown_endpoint",
			Message: "there is no admin endpoint " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &domain.Error{Kind: domain.KindInvalid, Code: codeMethodNotAllowed,
			Message: "method " + r.Method + " is not allowed on " + r.URL.Path})
	})
	r.Route(Prefix, func(r chi.Router) {
		r.Get("/openapi.json", serveOpenAPI)
		r.Group(func(r chi.Router) {
			r.Use(h.authenticate)
			r.Get("/keys", h.listKeys)
			r.Post("/keys", h.createKey)
			r.Get("/keys/{id}", h.getKey)
			r.Patch("/keys/{id}", h.updateKey)
			r.Post("/keys/{id}/revoke", h.revokeKey)
			r.Post("/keys/{id}/rotate", h.rotateKey)
			r.Post("/keys/{id}/expiry", h.setExpiry)
			r.Get("/admin-keys", h.listAdminKeys)
			r.Post("/admin-keys/{id}/revoke", h.revokeAdminKey)
			for path, p := range map[string]principals{"/users": {h, domain.ScopeUser}, "/teams": {h, domain.ScopeTeam}} {
				r.Get(path, p.list)
				r.Get(path+"/{id}", p.get)
				r.Patch(path+"/{id}", p.update)
			}
			r.Get("/models", h.listModels)
			r.Get("/usage", h.usage)
			r.Get("/audit", h.listAudit)
		})
	})
	return r, nil
}

// actorKey is the request context key of the authenticated actor.
type actorKey struct{}

// actorOf returns the request's authenticated actor.
func actorOf(r *http.Request) domain.Actor {
	a, _ := r.Context().Value(actorKey{}).(domain.Actor)
	return a
}

// writeJSON answers with v as JSON.
func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("encoding an admin response failed", "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"The server could not encode its response","type":"server_error","param":null,"code":"internal_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody decodes a JSON request body into v, refusing unknown fields,
// trailing data and bodies over maxBodyBytes. A field of the wrong type or
// that v does not know is named in param.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &domain.Error{Kind: domain.KindInvalid, Code: codeUnsupportedMedia, Message: "the body must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &domain.Error{Kind: domain.KindInvalid, Code: codeTooLarge, Message: "the body is larger than 1 MiB"}
		}
		return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_body", Message: "the body could not be read: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f := jsonerr.Explain(body, err)
		if f.Field != "" {
			return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_value", Param: f.Field, Message: f.Message}
		}
		return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_json", Message: f.Message}
	}
	if dec.More() {
		return &domain.Error{Kind: domain.KindInvalid, Code: "invalid_json", Message: "the body holds more than one JSON value"}
	}
	return nil
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, def, maxVal int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxVal {
		return 0, domain.InvalidParam(name, "%s must be a whole number between 1 and %d", name, maxVal)
	}
	return n, nil
}

// pathID is the user, team or key the request's path names ({id}), as the
// client meant it (httpin.PathValue): bob%40example.com is bob@example.com.
func pathID(r *http.Request) string { return httpin.PathValue(r, chi.URLParam(r, "id")) }
