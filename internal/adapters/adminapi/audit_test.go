package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tidygate/tidygate/internal/adapters/adminapi"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// auditStore is a key store that knows one admin key and serves a fixed
// audit log; the service calls nothing else of it here.
type auditStore struct {
	admin.KeyAdmin
	entries []domain.AuditEntry
}

func (s auditStore) AdminKeyByHash(context.Context, string) (domain.AdminKey, error) {
	return domain.AdminKey{ID: "adm_auditor", Name: "auditor", Scopes: []domain.AdminScope{domain.AdminRead}}, nil
}

func (s auditStore) Audit(context.Context, domain.AuditQuery) ([]domain.AuditEntry, error) {
	return s.entries, nil
}

// TestAuditShowsLimitsBeforeAndAfter checks that GET /audit shows a limits
// change's limits before and after (not null), the MLflow trace of an
// exported entry (null for one not exported yet) and why MLflow refused an
// entry it refused, in the shape the OpenAPI document describes.
func TestAuditShowsLimitsBeforeAndAfter(t *testing.T) {
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	store := auditStore{entries: []domain.AuditEntry{{ID: 7, At: at, Action: "limits.set", Target: "team:risk", Reason: "quarter plan",
		Actor:   domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_ops"},
		Before:  &domain.LimitsOf{Scope: domain.LimitTeam, ID: "risk", Limits: domain.Limits{TPM: 100_000}},
		After:   &domain.LimitsOf{Scope: domain.LimitTeam, ID: "risk", Limits: domain.Limits{RPM: 600, MaxConcurrent: 4}},
		TraceID: domain.AuditTraceID(domain.AuditEntry{ID: 7}),
	}, {ID: 6, At: at, Action: "admin_key.create", Target: "adm_ops", Reason: "automation", Actor: domain.Actor{Kind: domain.ActorCLI, ID: "root"},
		After: &domain.AdminKey{ID: "adm_ops", Name: "ops", Scopes: []domain.AdminScope{domain.AdminWrite}, CreatedAt: at}},
		{ID: 5, At: at, Action: "limits.set", Target: "team:ops", Reason: "refused", Actor: domain.Actor{Kind: domain.ActorCLI, ID: "root"},
			After: &domain.LimitsOf{Scope: domain.LimitTeam, ID: "ops"}, ExportRefused: "value too long for type character varying(8000)"}}}
	status, body := auditServer(t, store)("")
	if status != http.StatusOK {
		t.Fatalf("GET /audit: %d %s", status, body)
	}
	var page struct {
		Data []struct {
			Before, After map[string]any
			TraceID       *string `json:"trace_id"`
			ExportRefused *string `json:"export_refused"`
		}
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Data) != 3 {
		t.Fatalf("GET /audit answered %s (%v)", body, err)
	}
	want := func(state map[string]any, rpm, tpm, conc float64) {
		t.Helper()
		if state == nil || state["object"] != "admin.limits" || state["scope"] != "team" || state["id"] != "risk" ||
			state["rpm"] != rpm || state["tpm"] != tpm || state["max_concurrent"] != conc {
			t.Errorf("limits state %v; want team risk with rpm %v, tpm %v, max_concurrent %v", state, rpm, tpm, conc)
		}
	}
	want(page.Data[0].Before, 0, 100_000, 0)
	want(page.Data[0].After, 600, 0, 4)
	if id := page.Data[0].TraceID; id == nil || *id != domain.AuditTraceID(domain.AuditEntry{ID: 7}) {
		t.Errorf("the exported entry's trace_id is %v; want %s", id, domain.AuditTraceID(domain.AuditEntry{ID: 7}))
	}
	if id := page.Data[1].TraceID; id != nil {
		t.Errorf("the entry not exported yet has trace_id %q; want null", *id)
	}
	for i, want := range []string{"", "", "value too long for type character varying(8000)"} {
		if got := page.Data[i].ExportRefused; (got == nil) != (want == "") || got != nil && *got != want {
			t.Errorf("entry %d's export_refused is %v; want %q (null if empty)", i, got, want)
		}
	}
}

// TestAuditRefusesAnUnknownAction checks that GET /audit?action=key.revoked
// (a typo) is a 400 naming action and listing the actions there are, not an
// empty page that reads as "no revocations"; that every known action is
// accepted; and that the OpenAPI document lists the same actions.
func TestAuditRefusesAnUnknownAction(t *testing.T) {
	get := auditServer(t, auditStore{})
	for _, bogus := range []string{"key.revoked", "bogus"} {
		status, body := get("?action=" + bogus)
		var e struct {
			Error struct{ Message, Param string }
		}
		_ = json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || e.Error.Param != "action" || !strings.Contains(e.Error.Message, bogus) ||
			!strings.Contains(e.Error.Message, "key.revoke, ") || !strings.Contains(e.Error.Message, "limits.set") {
			t.Errorf("action=%s: %d %s; want 400 naming action and listing the actions", bogus, status, body)
		}
	}
	for _, action := range domain.AuditActions() {
		if status, body := get("?action=" + action); status != http.StatusOK {
			t.Errorf("action=%s: %d %s", action, status, body)
		}
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string
				Schema struct{ Enum []string }
			}
		}
	}
	if err := json.Unmarshal(adminapi.OpenAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Paths["/audit"]["get"].Parameters {
		if p.Name == "action" && !slices.Equal(p.Schema.Enum, domain.AuditActions()) {
			t.Errorf("the OpenAPI document's actions %v; want %v", p.Schema.Enum, domain.AuditActions())
		}
	}
}

// auditServer serves the admin API on store and returns a function that
// sends GET /audit with the query (from its "?") as an auditor, checks the
// answer against the OpenAPI document, and returns its status and body.
func auditServer(t *testing.T, store auditStore) func(query string) (int, []byte) {
	srv := serveAdmin(t, store)
	return func(query string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+adminapi.Prefix+"/audit"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+domain.AdminKeyPrefix+"auditor-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		validate(t, req, resp, body)
		return resp.StatusCode, body
	}
}

// validate checks a response against the OpenAPI document.
func validate(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(adminapi.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: "http://" + req.URL.Host + adminapi.Prefix}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("the response does not match the OpenAPI document: %v", err)
	}
}
