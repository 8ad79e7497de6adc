package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

func (s *store) UsageReport(_ context.Context, q domain.UsageQuery) ([]domain.UsageLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, q)
	return s.usage[q.GroupBy], nil
}

func (s *store) usageAsked() []domain.UsageQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.asked = nil }()
	return s.asked
}

// row is a usage table's row as the page renders it.
func row(group, requests, prompt, completion, cost string) string {
	return `<th scope="row">` + group + `</th><td class="num">` + requests + `</td><td class="num">` + prompt +
		`</td><td class="num">` + completion + `</td><td class="num">` + cost + `</td></tr>`
}

// TestUsage checks that the usage page asks the service for the days,
// team and model chosen, and shows the numbers of its rows exactly, in a
// table and a chart per team, model and day.
func TestUsage(t *testing.T) {
	f := newFixture(t)
	f.store.usage = map[string][]domain.UsageLine{
		domain.GroupByTeam: {{Group: "ops", Requests: 2, PromptTokens: 100, CompletionTokens: 40, Cost: 250_000},
			{Group: "risk", Requests: 5, PromptTokens: 1200, CompletionTokens: 300, Cost: 1_250_001}},
		domain.GroupByModel: {{Group: "gpt-4o", Requests: 6, PromptTokens: 1250, CompletionTokens: 330, Cost: 1_400_001},
			{Group: "mock-chat", Requests: 1, PromptTokens: 50, CompletionTokens: 10, Cost: 100_000}},
		domain.GroupByDay: {{Group: "2026-11-30", Requests: 3, PromptTokens: 300, CompletionTokens: 90, Cost: 500_000},
			{Group: "2026-12-02", Requests: 4, PromptTokens: 1000, CompletionTokens: 250, Cost: 1_000_001}},
	}
	b := f.browser()
	b.signIn(readerKey)

	p := b.get("/console/usage?from=2026-11-29&to=2026-12-02&team=risk&model=")
	if p.status != http.StatusOK {
		t.Fatalf("usage page: %d\n%s", p.status, p.body)
	}
	checkAccessible(t, "/console/usage", p.body)
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	asked := f.store.usageAsked()
	if len(asked) != 3 {
		t.Fatalf("asked for %d reports: %+v", len(asked), asked)
	}
	for i, by := range []string{domain.GroupByTeam, domain.GroupByModel, domain.GroupByDay} {
		if q := asked[i]; q.GroupBy != by || !q.From.Equal(day("2026-11-29")) || !q.To.Equal(day("2026-12-02")) || q.Team != "risk" || q.Model != "" {
			t.Errorf("report %d: %+v", i, q)
		}
	}
	for _, want := range []string{
		row("ops", "2", "100", "40", "$0.250000"), row("risk", "5", "1200", "300", "$1.250001"),
		row("Total", "7", "1300", "340", "$1.500001"),
		row("gpt-4o", "6", "1250", "330", "$1.400001"), row("mock-chat", "1", "50", "10", "$0.100000"),
		row("Total", "7", "1300", "340", "$1.500001"),
		// Every day of the span, those without calls as zeros.
		row("2026-11-29", "0", "0", "0", "$0.000000"), row("2026-11-30", "3", "300", "90", "$0.500000"),
		row("2026-12-01", "0", "0", "0", "$0.000000"), row("2026-12-02", "4", "1000", "250", "$1.000001"),
		row("Total", "7", "1300", "340", "$1.500001"),
		// The charts: titled and described, a bar per team and model
		// (risk's the longest, ops's a fifth of it), a column per day.
		`<svg class="chart" viewBox="0 0 720 60" role="img" aria-labelledby="usage_team_title usage_team_desc">`,
		`<title id="usage_team_title">Cost (USD) per team</title>`,
		`<desc id="usage_team_desc">Bars of the Cost (USD) of 2 teams, in the order of the table below, which gives every number; the largest is $1.250001.</desc>`,
		`<g><title>ops: $0.250000</title>`, `<rect x="190" y="4" width="80" height="18"></rect>`,
		`<g><title>risk: $1.250001</title>`, `<rect x="190" y="32" width="400" height="18"></rect>`,
		`<title id="usage_day_title">Cost (USD) per day</title>`,
		`<rect x="18" y="200" width="144" height="0"><title>2026-11-29: $0.000000</title></rect>`,
		`<rect x="558" y="24" width="144" height="176"><title>2026-12-02: $1.000001</title></rect>`,
		`<option value="cost" selected>`, `value="risk"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the usage page lacks %s", want)
		}
	}
	if n := strings.Count(p.body, "<svg "); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	// The charts may draw requests or tokens instead.
	if p := b.get("/console/usage?from=2026-11-29&to=2026-12-02&metric=requests"); !strings.Contains(p.body, `<g><title>risk: 5</title>`) ||
		!strings.Contains(p.body, `<option value="requests" selected>`) {
		t.Errorf("charts of requests:\n%s", p.body)
	}
	if p := b.get("/console/usage?from=2026-11-29&to=2026-12-02&metric=tokens"); !strings.Contains(p.body, `<g><title>risk: 1500</title>`) {
		t.Errorf("charts of tokens:\n%s", p.body)
	}

	// Without days, the last 30, today included.
	f.store.usageAsked()
	b.get("/console/usage")
	today := domain.PeriodDay.Start(f.now)
	if q := f.store.usageAsked(); len(q) != 3 || !q[0].To.Equal(today) || !q[0].From.Equal(today.AddDate(0, 0, -29)) {
		t.Errorf("the default days: %+v", q)
	}

	for query, says := range map[string]string{
		"from=2026-13-01":               "from must be a UTC day",
		"to=yesterday":                  "to must be a UTC day",
		"metric=dollars":                "metric must be cost, requests or tokens",
		"from=2026-12-02&to=2026-12-01": "to is before from",
		"from=2025-01-01&to=2026-12-01": "at most 366 are allowed",
	} {
		if p := b.get("/console/usage?" + query); p.status != http.StatusBadRequest || !strings.Contains(p.body, says) {
			t.Errorf("%s: %d, want 400 saying %q", query, p.status, says)
		}
	}
}

// TestUsageEmpty checks the page of days without a settled call.
func TestUsageEmpty(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(readerKey)
	p := b.get("/console/usage?from=2026-12-01&to=2026-12-01")
	if p.status != http.StatusOK || !strings.Contains(p.body, "No settled calls.") || !strings.Contains(p.body, row("2026-12-01", "0", "0", "0", "$0.000000")) ||
		strings.Count(p.body, "No settled calls: the chart is empty.") != 2 {
		t.Errorf("an empty report: %d\n%s", p.status, p.body)
	}
}
