//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tidygate/tidygate/internal/adapters/adminapi"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// adminClient calls the admin API and checks every answer against the
// OpenAPI document.
type adminClient struct {
	t      *testing.T
	base   string
	router routers.Router
}

func newAdminClient(t *testing.T, base string) *adminClient {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(adminapi.OpenAPIDocument())
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base + adminapi.Prefix}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &adminClient{t: t, base: base, router: router}
}

// call sends one request and returns the status and the decoded body, after
// validating the response against the document.
func (c *adminClient) call(method, path, secret, reason, body string, header ...string) (int, map[string]any, http.Header) {
	c.t.Helper()
	st, b, h := c.callRaw(method, path, secret, reason, body, header...)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, st, b)
	}
	return st, m, h
}

// callRaw is call without decoding the body.
func (c *adminClient) callRaw(method, path, secret, reason, body string, header ...string) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+adminapi.Prefix+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if reason != "" {
		req.Header.Set("X-Audit-Reason", reason)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	vreq, _ := http.NewRequestWithContext(context.Background(), method, c.base+adminapi.Prefix+path, nil)
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s %s is not in the OpenAPI document: %v", method, path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(b)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s: the %d response does not match the OpenAPI document: %v\n%s", method, path, resp.StatusCode, err, b)
	}
	return resp.StatusCode, b, resp.Header
}

func runAdminKey(t *testing.T, env []string, name, scopes string) string {
	t.Helper()
	out := strings.TrimSpace(runCLI(t, env, "admin-keys", "create", "--name", name, "--scopes", scopes, "--reason", "integration test"))
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "tga-") {
		t.Fatalf("admin-keys create printed %q, want one admin key line", out)
	}
	return out
}

// adminRig is a gateway on a fresh database with two admin keys, one
// that may write and one that may only read, and a client that checks
// every response against the OpenAPI document.
type adminRig struct {
	s              *service
	env            []string
	writer, reader string
	c              *adminClient
}

func newAdminRig(t *testing.T) adminRig {
	t.Helper()
	env := baseEnv(t, pgtest.New(t))
	s := start(t, env)
	return adminRig{s: s, env: env, writer: runAdminKey(t, env, "ops", "read,write"),
		reader: runAdminKey(t, env, "auditor", "read"), c: newAdminClient(t, s.URL)}
}

// audit returns the audit log's entries, newest first, as the reader sees them.
func (r adminRig) audit(t *testing.T) []any {
	t.Helper()
	st, page, _ := r.c.call("GET", "/audit?limit=499", r.reader, "", "")
	if st != 200 {
		t.Fatalf("audit: %d %v", st, page)
	}
	return page["data"].([]any)
}

// TestAdminAPI drives the admin API against real PostgreSQL: scopes are
// enforced, every write leaves exactly one audit entry, optimistic
// concurrency holds, failed authentications are throttled, no secret is
// echoed, and every response matches the OpenAPI document.
func TestAdminAPI(t *testing.T) {
	rig := newAdminRig(t)
	s, writer, reader, c := rig.s, rig.writer, rig.reader, rig.c
	auditCount := func() int { return len(rig.audit(t)) }
	base := auditCount() // the two admin keys
	if base != 2 {
		t.Fatalf("%d audit entries after creating two admin keys, want 2", base)
	}

	// Create: write may, read may not; no reason, no change.
	body := `{"user":"alice","team":"risk","allowed_models":["mock-chat"],"rpm":60,"daily_budget_usd":"5"}`
	if st, e, _ := c.call("POST", "/keys", reader, "onboarding", body); st != 403 {
		t.Errorf("read creates a key: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/keys", writer, "", body); st != 400 {
		t.Errorf("create without a reason: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/keys", writer, "onboarding", `{"user":"alice","team":"risk","daily_budget_usd":"five"}`); st != 400 {
		t.Errorf("create with a bad budget: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/keys", writer, "onboarding", `{"user":"alice","team":"risk","colour":"red"}`); st != 400 {
		t.Errorf("create with an unknown field: %d %v", st, e)
	}
	// A field of the wrong type, or unknown, is named in param, in JSON's
	// words rather than Go's.
	for body, param := range map[string]string{
		`{"user":"alice","team":"risk","daily_budget_usd":5}`: "daily_budget_usd",
		`{"user":"alice","team":"risk","colour":"red"}`:       "colour",
		`{"user":"alice","team":"risk","allowed_models":"x"}`: "allowed_models",
		// A model the catalogue does not have: a typo, caught now.
		`{"user":"alice","team":"risk","allowed_models":["mock-caht"]}`: "allowed_models",
	} {
		st, e, _ := c.call("POST", "/keys", writer, "onboarding", body)
		obj, _ := e["error"].(map[string]any)
		if msg, _ := obj["message"].(string); st != 400 || obj["param"] != param || strings.Contains(msg, "Go ") || strings.Contains(msg, "Request") {
			t.Errorf("create with %s: %d %v; want a 400 naming %s", body, st, e, param)
		}
	}
	if n := auditCount(); n != base {
		t.Fatalf("refused writes left %d audit entries", n-base)
	}
	st, created, hdr := c.call("POST", "/keys", writer, "onboarding alice", body)
	if st != 201 {
		t.Fatalf("create: %d %v", st, created)
	}
	secret := created["secret"].(string)
	key := created["key"].(map[string]any)
	id := key["id"].(string)
	if n := auditCount(); n != base+1 {
		t.Fatalf("one create left %d audit entries, want 1", n-base)
	}
	// The new key works on the model API.
	if resp, b := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+secret); resp.StatusCode != 200 {
		t.Fatalf("the created key: %d %s", resp.StatusCode, b)
	}
	// An admin key is not an API key, and an API key is not an admin key.
	if resp, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+writer); resp.StatusCode != 401 {
		t.Errorf("an admin key on the model API: %d", resp.StatusCode)
	}
	if st, _, _ := c.call("GET", "/keys", secret, "", ""); st != 401 {
		t.Errorf("an API key on the admin API: %d", st)
	}

	// Read: list, filter, page, get with its ETag.
	if st, page, _ := c.call("GET", "/keys?user=alice&state=active", reader, "", ""); st != 200 || len(page["data"].([]any)) != 1 {
		t.Errorf("list alice's keys: %d %v", st, page)
	}
	if st, page, _ := c.call("GET", "/keys?state=sideways", reader, "", ""); st != 400 {
		t.Errorf("list with a bad state: %d %v", st, page)
	}
	st, got, getHdr := c.call("GET", "/keys/"+id, reader, "", "")
	if st != 200 || got["user"] != "alice" || getHdr.Get("ETag") != hdr.Get("ETag") || getHdr.Get("ETag") == "" {
		t.Fatalf("get: %d %v, ETag %q (created %q)", st, got, getHdr.Get("ETag"), hdr.Get("ETag"))
	}
	if st, e, _ := c.call("GET", "/keys/key_nope", reader, "", ""); st != 404 {
		t.Errorf("get an unknown key: %d %v", st, e)
	}

	// Revoke: read may not; a stale If-Match changes nothing; the right one revokes.
	if st, e, _ := c.call("POST", "/keys/"+id+"/revoke", reader, "alice left", ""); st != 403 {
		t.Errorf("read revokes: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/keys/"+id+"/revoke", writer, "alice left", "", "If-Match", `"0000"`); st != 412 {
		t.Errorf("revoke with a stale If-Match: %d %v", st, e)
	}
	if n := auditCount(); n != base+1 {
		t.Fatalf("refused revokes left %d audit entries", n-base-1)
	}
	if st, e, _ := c.call("POST", "/keys/"+id+"/revoke", writer, "alice left", "", "If-Match", getHdr.Get("ETag")); st != 200 || e["revoked_at"] == nil {
		t.Fatalf("revoke: %d %v", st, e)
	}
	if n := auditCount(); n != base+2 {
		t.Fatalf("one revoke left %d audit entries, want 1", n-base-1)
	}
	if resp, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+secret); resp.StatusCode != 401 {
		t.Errorf("the revoked key: %d", resp.StatusCode)
	}

	// The audit log: who, what before and after, why; filter and page.
	st, page, _ := c.call("GET", "/audit?target="+id, reader, "", "")
	entries := page["data"].([]any)
	if st != 200 || len(entries) != 2 {
		t.Fatalf("audit of %s: %d %v", id, st, page)
	}
	rev := entries[0].(map[string]any)
	actor := rev["actor"].(map[string]any)
	if rev["action"] != "key.revoke" || rev["reason"] != "alice left" || actor["kind"] != "admin_key" ||
		rev["before"].(map[string]any)["revoked_at"] != nil || rev["after"].(map[string]any)["revoked_at"] == nil {
		t.Errorf("revoke entry: %v", rev)
	}
	st, first, _ := c.call("GET", "/audit?limit=1", reader, "", "")
	if st != 200 || first["has_more"] != true {
		t.Fatalf("first audit page: %d %v", st, first)
	}
	if st, next, _ := c.call("GET", "/audit?limit=1&before="+first["last_id"].(string), reader, "", ""); st != 200 || len(next["data"].([]any)) != 1 {
		t.Errorf("second audit page: %d %v", st, next)
	}

	// Methods and endpoints the document does not have answer in the error shape.
	for path, want := range map[string]int{"/keys": 405, "/nothing": 404} {
		resp, b := s.do("DELETE", adminapi.Prefix+path, "", "Authorization", "Bearer "+writer)
		if resp.StatusCode != want || !strings.Contains(string(b), `"error"`) {
			t.Errorf("DELETE %s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
	}

	// No secret in any audit entry.
	_, all, _ := c.call("GET", "/audit?limit=499", reader, "", "")
	raw, _ := json.Marshal(all)
	for _, sec := range []string{secret, writer, reader} {
		if strings.Contains(string(raw), sec) {
			t.Errorf("the audit log shows a secret")
		}
	}

	// Failed authentications are throttled per address: ten per window
	// (the API key above is one of them if its window has not ended), the
	// next is refused, and after it even the right key waits.
	throttleWithin11(t, func(i int) (int, map[string]any, http.Header) {
		return c.call("GET", "/keys", "tga-wrong-"+strings.Repeat("x", i+20), "", "")
	})
	st, e, h := c.call("GET", "/keys", reader, "", "")
	if st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("the right key after the refused failure: %d %v, Retry-After %q", st, e, h.Get("Retry-After"))
	}
}

// throttleWithin11 makes failed authentications with fail (the i-th from
// 0) until one is refused with 429 and Retry-After, and fails the test if
// the eleventh is not: the admin side allows ten per window. It first
// waits for the next minute when this one is about to end, so that all of
// them fall in one window of the default RATE_LIMIT_WINDOW.
func throttleWithin11(t *testing.T, fail func(i int) (int, map[string]any, http.Header)) {
	t.Helper()
	if end := time.Now().Truncate(time.Minute).Add(time.Minute); time.Until(end) < 5*time.Second {
		time.Sleep(time.Until(end) + 100*time.Millisecond)
	}
	for i := range 11 {
		st, e, h := fail(i)
		if st == http.StatusTooManyRequests && h.Get("Retry-After") != "" {
			return
		}
		if st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %v, want 401, or 429 with Retry-After", i+1, st, e)
		}
	}
	t.Fatal("eleven failed authentications in one window, none refused with 429")
}
