package adminapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestExpiryNamesWhatIsWrongWithTheTime checks that POST /keys/{id}/expiry
// with a value that is not an RFC 3339 time says so, naming expires_at and
// the value, where it said that expires_at is required; and that a body
// without it still says it is required.
func TestExpiryNamesWhatIsWrongWithTheTime(t *testing.T) {
	var created int
	call := adminServer(t, createStore{created: &created})
	for body, want := range map[string]string{
		`{"expires_at":"garbage"}`:    `expires_at "garbage" is not a valid RFC 3339 time`,
		`{"expires_at":"2027-01-31"}`: `expires_at "2027-01-31" is not a valid RFC 3339 time`,
		`{"expires_at":5}`:            "expires_at must be an RFC 3339 time as a string",
		`{}`:                          "expires_at is required",
	} {
		status, e := call(http.MethodPost, "/keys/key_1/expiry", body)
		if status != http.StatusBadRequest || e.Param != "expires_at" || !strings.Contains(e.Message, want) {
			t.Errorf("%s: %d %+v; want 400 naming expires_at saying %q", body, status, e, want)
		}
	}
}

// TestUsageNamesAnInvalidDate checks that GET /usage with a from or to
// that is not a date (2026-13-01) says the date is not valid, naming the
// parameter and the value, where it said that the parameter is required;
// and that a missing one still says it is required.
func TestUsageNamesAnInvalidDate(t *testing.T) {
	var created int
	call := adminServer(t, createStore{created: &created})
	for query, want := range map[string][2]string{
		"from=2026-13-01&to=2026-12-31": {"from", `from "2026-13-01" is not a valid date`},
		"from=2026-12-01&to=2026-12-32": {"to", `to "2026-12-32" is not a valid date`},
		"from=yesterday&to=2026-12-31":  {"from", `from "yesterday" is not a valid date`},
		"to=2026-12-31":                 {"from", "from is required"},
	} {
		status, e := call(http.MethodGet, "/usage?group_by=team&"+query, "")
		if status != http.StatusBadRequest || e.Param != want[0] || !strings.Contains(e.Message, want[1]) {
			t.Errorf("%s: %d %+v; want 400 naming %s saying %q", query, status, e, want[0], want[1])
		}
	}
}

// TestDuplicateBudgetNamesItsScope checks that PATCH /keys/{id} naming one
// budget twice says which ("the budget of the key per day"), where it
// said `key ""`: the key's, user's and team's IDs are filled in only when
// the change is applied.
func TestDuplicateBudgetNamesItsScope(t *testing.T) {
	var created int
	call := adminServer(t, createStore{created: &created})
	for scope, want := range map[string]string{"key": "the budget of the key per day", "user": "the budget of the user per day",
		"team": "the budget of the team per day"} {
		b := `{"scope":"` + scope + `","period":"day","limit_usd":"5"}`
		status, e := call(http.MethodPatch, "/keys/key_1", `{"budgets":[`+b+`,`+b+`]}`)
		if status != http.StatusBadRequest || e.Param != "budgets" || !strings.Contains(e.Message, want+" is named twice") || strings.Contains(e.Message, `""`) {
			t.Errorf("%s budget twice: %d %+v; want 400 naming budgets saying %q", scope, status, e, want)
		}
	}
}

// TestNegativeLimitSaysWhatZeroMeans checks that PATCH /keys/{id} with a
// negative limit says what 0 means for that field: unlimited for rpm and
// tpm, but the per-key share (MAX_CONCURRENT_PER_KEY) for max_concurrent,
// where it said "0: unlimited" for all three.
func TestNegativeLimitSaysWhatZeroMeans(t *testing.T) {
	var created int
	call := adminServer(t, createStore{created: &created})
	for field, want := range map[string]string{"rpm": "(0: unlimited)", "tpm": "(0: unlimited)",
		"max_concurrent": "(0: the gateway's per-key share, MAX_CONCURRENT_PER_KEY)"} {
		status, e := call(http.MethodPatch, "/keys/key_1", `{"`+field+`":-1}`)
		if status != http.StatusBadRequest || e.Param != field || !strings.Contains(e.Message, want) {
			t.Errorf("%s -1: %d %+v; want 400 naming %s saying %q", field, status, e, field, want)
		}
	}
}
