//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestAdminAPILimits drives the rate and concurrency limits of users and
// teams over the admin API against real PostgreSQL: they are read on GET,
// set and removed (only with null) by PATCH under If-Match, refused with a
// 400 naming the field when malformed, enforced on the next call, and each
// change leaves exactly one audit entry with the limits before and after.
// Read cannot write, and every response matches the OpenAPI document.
func TestAdminAPILimits(t *testing.T) {
	rig := newAdminRig(t)
	s, writer, reader, c := rig.s, rig.writer, rig.reader, rig.c
	// lastAudit returns the number of audit entries and the newest.
	lastAudit := func() (int, map[string]any) {
		t.Helper()
		data := rig.audit(t)
		return len(data), data[0].(map[string]any)
	}
	st, created, _ := c.call("POST", "/keys", writer, "onboarding alice", `{"user":"alice","team":"risk"}`)
	if st != 201 {
		t.Fatalf("create: %d %v", st, created)
	}
	secret := created["secret"].(string)
	chat := func() int {
		resp, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+secret)
		return resp.StatusCode
	}

	st, alice, hdr := c.call("GET", "/users/alice", reader, "", "")
	if st != 200 || alice["limits"] == nil || hdr.Get("ETag") == "" {
		t.Fatalf("alice: %d %v", st, alice)
	}
	for name, v := range alice["limits"].(map[string]any) {
		if v != nil {
			t.Errorf("alice's %s before any was set: %v, want null", name, v)
		}
	}
	etag := hdr.Get("ETag")
	n, _ := lastAudit()

	set := `{"limits":{"rpm":2,"max_concurrency":3}}`
	if st, e, _ := c.call("PATCH", "/users/alice", reader, "alice's share", set); st != 403 {
		t.Errorf("read sets limits: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/users/alice", writer, "", set); st != 400 {
		t.Errorf("limits without a reason: %d %v", st, e)
	}
	if st, e, _ := c.call("PATCH", "/users/alice", writer, "alice's share", set, "If-Match", `"stale"`); st != 412 {
		t.Errorf("a stale If-Match: %d %v", st, e)
	}
	for body, param := range map[string]string{
		`{"limits":{"rpm":-1}}`:                   "limits.rpm",
		`{"limits":{"tpm":1.5}}`:                  "limits.tpm",
		`{"limits":{"rpm":"60"}}`:                 "limits.rpm",
		`{"limits":{"max_concurrency":0}}`:        "limits.max_concurrency",
		`{"limits":{"tpm":2147483648}}`:           "limits.tpm",
		`{"limits":{}}`:                           "limits",
		`{"limits":{"rpm":5,"max_concurrent":1}}`: "",
		`{"limits":{"rpm":5},"colour":"red"}`:     "",
	} {
		st, e, _ := c.call("PATCH", "/users/alice", writer, "alice's share", body)
		obj, _ := e["error"].(map[string]any)
		if st != 400 || obj["type"] != "invalid_request_error" || param != "" && obj["param"] != param {
			t.Errorf("PATCH %s: %d %v, want 400 naming %q", body, st, e, param)
		}
	}
	if got, _ := lastAudit(); got != n {
		t.Fatalf("refused limit changes left %d audit entries", got-n)
	}

	st, alice, hdr = c.call("PATCH", "/users/alice", writer, "alice's share", set, "If-Match", etag)
	limits, _ := alice["limits"].(map[string]any)
	if st != 200 || limits["rpm"] != float64(2) || limits["tpm"] != nil || limits["max_concurrency"] != float64(3) || hdr.Get("ETag") == etag {
		t.Fatalf("set alice's limits: %d %v, ETag %q", st, alice, hdr.Get("ETag"))
	}
	got, entry := lastAudit()
	before, _ := entry["before"].(map[string]any)
	after, _ := entry["after"].(map[string]any)
	if got != n+1 || entry["action"] != "user.update" || entry["target"] != "user:alice" || entry["reason"] != "alice's share" ||
		before["limits"].(map[string]any)["rpm"] != nil || after["limits"].(map[string]any)["rpm"] != float64(2) {
		t.Fatalf("%d audit entries for one change; the newest: %v", got-n, entry)
	}
	if st, same, h := c.call("GET", "/users/alice", reader, "", ""); st != 200 || h.Get("ETag") != hdr.Get("ETag") || same["limits"].(map[string]any)["rpm"] != float64(2) {
		t.Errorf("alice after the change: %d %v, ETag %q, want %q", st, same, h.Get("ETag"), hdr.Get("ETag"))
	}
	// The next calls count against the new limit: two a minute.
	if a, b, third := chat(), chat(), chat(); a != 200 || b != 200 || third != 429 {
		t.Errorf("calls under alice's rpm of 2: %d %d %d, want 200 200 429", a, b, third)
	}

	// Removing a limit is said with null, and leaves the others.
	if st, e, _ := c.call("PATCH", "/users/alice", writer, "lift", `{"limits":{"rpm":null}}`, "If-Match", etag); st != 412 {
		t.Errorf("the ETag from before the change: %d %v", st, e)
	}
	st, alice, _ = c.call("PATCH", "/users/alice", writer, "lift", `{"limits":{"rpm":null}}`, "If-Match", hdr.Get("ETag"))
	limits, _ = alice["limits"].(map[string]any)
	if st != 200 || limits["rpm"] != nil || limits["max_concurrency"] != float64(3) {
		t.Fatalf("remove alice's rpm: %d %v", st, alice)
	}
	if got, entry := lastAudit(); got != n+2 || entry["after"].(map[string]any)["limits"].(map[string]any)["rpm"] != nil ||
		entry["before"].(map[string]any)["limits"].(map[string]any)["rpm"] != float64(2) {
		t.Errorf("the removal's audit entry (%d new): %v", got-n-1, entry)
	}
	if got := chat(); got != 200 {
		t.Errorf("a call after alice's rpm was removed: %d", got)
	}

	// A team's budgets and limits change together, in one audit entry; a
	// user with limits alone is listed.
	st, team, _ := c.call("PATCH", "/teams/risk", writer, "Q3 plan", `{"budgets":[{"period":"month","limit_usd":"500"}],"limits":{"tpm":100000}}`)
	if st != 200 || len(team["budgets"].([]any)) != 1 || team["limits"].(map[string]any)["tpm"] != float64(100000) {
		t.Fatalf("team risk: %d %v", st, team)
	}
	if st, e, _ := c.call("PATCH", "/users/carol", writer, "carol starts", `{"limits":{"max_concurrency":1}}`); st != 200 || e["keys"] != float64(0) {
		t.Fatalf("limits for a user without keys: %d %v", st, e)
	}
	if got, _ := lastAudit(); got != n+4 {
		t.Errorf("two more changes left %d audit entries, want 2", got-n-2)
	}
	st, page, _ := c.call("GET", "/users", reader, "", "")
	found := false
	for _, u := range page["data"].([]any) {
		u := u.(map[string]any)
		found = found || u["id"] == "carol" && u["limits"].(map[string]any)["max_concurrency"] == float64(1)
	}
	if st != 200 || !found {
		t.Errorf("users: %d %v, want carol with her limit", st, page)
	}

	// Model limits are read here and changed in the catalogue file.
	st, page, _ = c.call("GET", "/models", reader, "", "")
	found = false
	for _, m := range page["data"].([]any) {
		m := m.(map[string]any)
		found = found || m["id"] == "mock-chat" && m["limits"] != nil
	}
	if st != 200 || !found {
		t.Errorf("models: %d %v, want mock-chat with its limits", st, page)
	}
	if st, e, _ := c.call("GET", "/models", "tga-"+strings.Repeat("0", 40), "", ""); st != 401 {
		t.Errorf("models without a valid admin key: %d %v", st, e)
	}
}
