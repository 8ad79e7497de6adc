//go:build integration

package integration

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

// TestAdminAPIChanges drives the admin API's updates against real
// PostgreSQL: rotation with a grace period, expiry, PATCH of a key's
// limits and budgets under If-Match, users and teams and their budgets,
// admin keys revoked, and usage reports in JSON and CSV with trace IDs.
// Read cannot write, every write leaves exactly one audit entry, and every
// response matches the OpenAPI document.
func TestAdminAPIChanges(t *testing.T) {
	rig := newAdminRig(t)
	s, env, writer, reader, c := rig.s, rig.env, rig.writer, rig.reader, rig.c
	audits := func() int { return len(rig.audit(t)) }
	n := audits()
	// wrote checks that exactly want audit entries were added since the last check.
	wrote := func(what string, want int) {
		t.Helper()
		if got := audits(); got != n+want {
			t.Errorf("%s left %d audit entries, want %d", what, got-n, want)
		}
		n = audits()
	}

	st, created, _ := c.call("POST", "/keys", writer, "onboarding alice", `{"user":"alice","team":"risk"}`)
	if st != 201 {
		t.Fatalf("create: %d %v", st, created)
	}
	oldSecret := created["secret"].(string)
	id := created["key"].(map[string]any)["id"].(string)
	wrote("create", 1)
	chat := func(secret string) int {
		resp, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+secret)
		return resp.StatusCode
	}
	if got := chat(oldSecret); got != 200 {
		t.Fatalf("the new key: %d", got)
	}

	// Rotate: read may not; with a grace period both secrets work.
	if st, e, _ := c.call("POST", "/keys/"+id+"/rotate", reader, "quarterly", `{"grace_seconds":3600}`); st != 403 {
		t.Errorf("read rotates: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/keys/"+id+"/rotate", writer, "quarterly", `{"grace_seconds":-1}`); st != 400 {
		t.Errorf("a negative grace: %d %v", st, e)
	}
	wrote("refused rotations", 0)
	st, rotated, hdr := c.call("POST", "/keys/"+id+"/rotate", writer, "quarterly", `{"grace_seconds":3600}`)
	if st != 200 || rotated["key"].(map[string]any)["previous_valid_until"] == nil || hdr.Get("ETag") == "" {
		t.Fatalf("rotate: %d %v", st, rotated)
	}
	newSecret := rotated["secret"].(string)
	wrote("rotate", 1)
	if chat(oldSecret) != 200 || chat(newSecret) != 200 {
		t.Errorf("during the grace period: old %d, new %d; want both 200", chat(oldSecret), chat(newSecret))
	}

	// PATCH: limits and budgets of every scope, under If-Match.
	etag := hdr.Get("ETag")
	patch := `{"rpm":100,"allowed_models":["mock-chat"],"budgets":[{"scope":"key","period":"week","limit_usd":"3"},
		{"scope":"user","period":"day","model":"mock-chat","limit_usd":"2"},{"scope":"team","period":"rolling:24h","limit_usd":"50"}]}`
	if st, e, _ := c.call("PATCH", "/keys/"+id, reader, "more", patch, "If-Match", etag); st != 403 {
		t.Errorf("read patches: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/keys/"+id, writer, "more", patch, "If-Match", `"stale"`); st != 412 {
		t.Errorf("a stale If-Match: %d %v", st, e)
	}
	for name, bad := range map[string]string{
		"nothing":          `{}`,
		"a zero budget":    `{"budgets":[{"scope":"key","period":"week","limit_usd":"0"}]}`,
		"no limit_usd":     `{"budgets":[{"scope":"key","period":"week"}]}`,
		"a bad period":     `{"budgets":[{"scope":"key","period":"fortnight","limit_usd":"1"}]}`,
		"a negative rpm":   `{"rpm":-5}`,
		"an unknown field": `{"colour":"red"}`,
	} {
		if st, e, _ := c.call("PATCH", "/keys/"+id, writer, "more", bad); st != 400 {
			t.Errorf("PATCH with %s: %d %v", name, st, e)
		}
	}
	if st, e, _ := c.call("PATCH", "/keys/"+id, writer, "", patch); st != 400 {
		t.Errorf("PATCH without a reason: %d %v", st, e)
	}
	wrote("refused updates", 0)
	st, patched, hdr := c.call("PATCH", "/keys/"+id, writer, "more", patch, "If-Match", etag)
	if st != 200 || patched["rpm"] != float64(100) || len(patched["budgets"].([]any)) != 3 || hdr.Get("ETag") == etag {
		t.Fatalf("patch: %d %v", st, patched)
	}
	wrote("patch", 1)
	st, patched, hdr = c.call("PATCH", "/keys/"+id, writer, "less", `{"budgets":[{"scope":"key","period":"week","limit_usd":null}]}`, "If-Match", hdr.Get("ETag"))
	if st != 200 || len(patched["budgets"].([]any)) != 2 {
		t.Fatalf("removing a budget: %d %v", st, patched)
	}
	wrote("patch removing a budget", 1)

	// Expiry: in the past, the key stops at once; null brings it back.
	if st, e, _ := c.call("POST", "/keys/"+id+"/expiry", writer, "contract", `{"expires_at":"soon"}`); st != 400 {
		t.Errorf("a bad expiry: %d %v", st, e)
	}
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if st, e, _ := c.call("POST", "/keys/"+id+"/expiry", writer, "contract ended", `{"expires_at":"`+past+`"}`, "If-Match", hdr.Get("ETag")); st != 200 || e["expires_at"] == nil {
		t.Fatalf("expire: %d %v", st, e)
	}
	if got := chat(newSecret); got != 401 {
		t.Errorf("an expired key: %d", got)
	}
	if st, e, _ := c.call("POST", "/keys/"+id+"/expiry", writer, "contract renewed", `{"expires_at":null}`); st != 200 || e["expires_at"] != nil {
		t.Fatalf("unexpire: %d %v", st, e)
	}
	wrote("two expiry changes", 2)
	if got := chat(newSecret); got != 200 {
		t.Errorf("the key without an expiry: %d", got)
	}

	// Users and teams, and their budgets.
	st, team, hdr := c.call("GET", "/teams/risk", reader, "", "")
	if st != 200 || team["keys"] != float64(1) || len(team["budgets"].([]any)) != 1 {
		t.Fatalf("team risk: %d %v", st, team)
	}
	teamPatch := `{"budgets":[{"period":"month","limit_usd":"500"},{"period":"day","model":"group:premium","limit_usd":"20"}]}`
	if st, e, _ := c.call("PATCH", "/teams/risk", reader, "plan", teamPatch); st != 403 {
		t.Errorf("read patches a team: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/teams/risk", writer, "plan", teamPatch, "If-Match", `"stale"`); st != 412 {
		t.Errorf("a stale team If-Match: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/teams/risk", writer, "plan", `{"budgets":[{"scope":"user","period":"day","limit_usd":"1"}]}`); st != 400 {
		t.Errorf("a user's budget on a team: %d %v", st, e)
	}
	wrote("refused team changes", 0)
	if st, e, _ := c.call("PATCH", "/teams/risk", writer, "plan", teamPatch, "If-Match", hdr.Get("ETag")); st != 200 || len(e["budgets"].([]any)) != 3 {
		t.Fatalf("patch team: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/users/bob", writer, "bob joins", `{"budgets":[{"period":"week","limit_usd":"10"}]}`); st != 200 || e["keys"] != float64(0) {
		t.Fatalf("a budget for a user without keys: %d %v", st, e)
	}
	wrote("two budget changes", 2)
	if st, page, _ := c.call("GET", "/users?limit=1", reader, "", ""); st != 200 || page["has_more"] != true || page["last_id"] != "alice" {
		t.Errorf("users, first page: %d %v", st, page)
	}
	// The development key's user and team are dev.
	if st, page, _ := c.call("GET", "/users?after=alice", reader, "", ""); st != 200 || len(page["data"].([]any)) != 2 ||
		page["data"].([]any)[0].(map[string]any)["id"] != "bob" {
		t.Errorf("users after alice: %d %v", st, page)
	}
	if st, page, _ := c.call("GET", "/teams", reader, "", ""); st != 200 || len(page["data"].([]any)) != 2 || page["has_more"] != false {
		t.Errorf("teams: %d %v", st, page)
	}

	// Usage: one call by alice so far (and two more, above, that answered
	// 200): grouped, as JSON and CSV, with trace IDs.
	// The gateway settles calls after answering them; /v1/usage waits for
	// the settlements in flight.
	if resp, b := s.do("GET", "/v1/usage", "", "Authorization", "Bearer "+newSecret); resp.StatusCode != 200 {
		t.Fatalf("/v1/usage: %d %s", resp.StatusCode, b)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	q := "/usage?group_by=team&from=" + today + "&to=" + today + "&include=trace_ids"
	st, rep, _ := c.call("GET", q, reader, "", "")
	if st != 200 {
		t.Fatalf("usage: %d %v", st, rep)
	}
	rows := rep["data"].([]any)
	if len(rows) != 1 {
		t.Fatalf("usage by team: %v", rep)
	}
	row := rows[0].(map[string]any)
	traces := row["trace_ids"].([]any)
	if row["group"] != "risk" || row["requests"] != float64(len(traces)) || len(traces) < 4 {
		t.Errorf("risk's usage: %v", row)
	}
	st, body, h := c.callRaw("GET", q, reader, "", "", "Accept", "text/csv")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("usage as CSV: %d %s", st, body)
	}
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(records) != 2 || records[0][0] != "team" || records[1][0] != "risk" || len(strings.Fields(records[1][5])) != len(traces) {
		t.Errorf("the CSV report: %q, %v", records, err)
	}
	if st, _, _ := c.callRaw("GET", "/usage?group_by=day&from="+today+"&to="+today+"&format=csv", reader, "", ""); st != 200 {
		t.Errorf("format=csv: %d", st)
	}
	for name, bad := range map[string]string{
		"no grouping": "/usage?from=" + today + "&to=" + today, "no from": "/usage?group_by=day&to=" + today,
		"backwards": "/usage?group_by=day&from=2026-02-02&to=2026-02-01", "a bad include": "/usage?group_by=day&from=" + today + "&to=" + today + "&include=prompts",
	} {
		if st, e, _ := c.call("GET", bad, reader, "", ""); st != 400 {
			t.Errorf("usage with %s: %d %v", name, st, e)
		}
	}

	// Admin keys: listed without secrets; a revoked one stops at once.
	spare := runAdminKey(t, env, "spare", "read")
	n++ // its creation, on the command line
	st, admins, _ := c.call("GET", "/admin-keys", reader, "", "")
	if st != 200 || len(admins["data"].([]any)) != 3 {
		t.Fatalf("admin keys: %d %v", st, admins)
	}
	spareID := ""
	for _, a := range admins["data"].([]any) {
		if a.(map[string]any)["name"] == "spare" {
			spareID = a.(map[string]any)["id"].(string)
		}
	}
	if st, e, _ := c.call("POST", "/admin-keys/"+spareID+"/revoke", reader, "retired", ""); st != 403 {
		t.Errorf("read revokes an admin key: %d %v", st, e)
	}
	if st, e, _ := c.call("POST", "/admin-keys/"+spareID+"/revoke", writer, "retired", ""); st != 200 || e["revoked_at"] == nil {
		t.Fatalf("revoke an admin key: %d %v", st, e)
	}
	wrote("revoking an admin key", 1)
	if st, e, _ := c.call("GET", "/keys", spare, "", ""); st != 401 {
		t.Errorf("a revoked admin key: %d %v", st, e)
	}
	for _, sec := range []string{oldSecret, newSecret, spare} {
		_, raw, _ := c.callRaw("GET", "/audit?limit=499", reader, "", "")
		if strings.Contains(string(raw), sec) {
			t.Errorf("the audit log shows a secret")
		}
	}
}
