package console

import (
	"net/http"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// defaultUsageDays is how many days the usage page shows when the
// administrator names none: the last 30, today included.
const defaultUsageDays = 30

// usageMetrics are what a usage chart may draw, by the value of the
// metric parameter; the first is the default.
var usageMetrics = []usageMetric{
	{"cost", "Cost (USD)", func(l domain.UsageLine) int64 { return int64(l.Cost) }},
	{"requests", "Requests", func(l domain.UsageLine) int64 { return l.Requests }},
	{"tokens", "Tokens (prompt and completion)", func(l domain.UsageLine) int64 { return l.PromptTokens + l.CompletionTokens }},
}

// usageMetric is one quantity a chart draws.
type usageMetric struct {
	Name, Label string
	of          func(domain.UsageLine) int64
}

// usageData fills the usage page: the filter, and a chart with its table
// per team, per model and per day.
type usageData struct {
	From, To    string
	Team, Model string
	Metric      string
	Metrics     []usageMetric
	Charts      []usageChart
}

// usageGroupings are the usage page's charts, in order: what each groups
// by, and how the page names it.
var usageGroupings = []struct{ by, name, plural string }{
	{domain.GroupByTeam, "Team", "teams"},
	{domain.GroupByModel, "Model", "models"},
	{domain.GroupByDay, "Day", "days"},
}

// usagePage shows settled calls' usage from one UTC day to another, per
// team, per model and per day, each as a chart (SVG drawn on the server:
// no script) beside the table of its numbers; team and model narrow every
// report to one of each.
func (h *handler) usagePage(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	today := domain.PeriodDay.Start(h.sessions.now().UTC())
	d := usageData{Team: q.Get("team"), Model: q.Get("model"), Metrics: usageMetrics}
	from, to := today.AddDate(0, 0, 1-defaultUsageDays), today
	for _, p := range []struct {
		param string
		into  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.param); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				h.fail(w, r, s, domain.InvalidParam(p.param, "%s must be a UTC day such as 2026-12-01, not %q.", p.param, v))
				return
			}
			*p.into = t
		}
	}
	d.From, d.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	metric := usageMetrics[0]
	if v := q.Get("metric"); v != "" {
		found := false
		for _, m := range usageMetrics {
			if m.Name == v {
				metric, found = m, true
			}
		}
		if !found {
			h.fail(w, r, s, domain.InvalidParam("metric", "metric must be cost, requests or tokens, not %q.", v))
			return
		}
	}
	d.Metric = metric.Name
	for _, g := range usageGroupings {
		lines, err := h.svc.UsageReport(r.Context(), s.actor(),
			domain.UsageQuery{GroupBy: g.by, From: from, To: to, Team: d.Team, Model: d.Model})
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		if g.by == domain.GroupByDay {
			lines = everyDay(lines, from, to)
		}
		d.Charts = append(d.Charts, newUsageChart(g.by, g.name, g.plural, metric, lines))
	}
	h.render(w, r, s, http.StatusOK, "usage", "Usage", d)
}

// everyDay returns the report per day with a line, of zeros, for each day
// from from to to that had no settled call, so that the chart's time axis
// has no gaps.
func everyDay(lines []domain.UsageLine, from, to time.Time) []domain.UsageLine {
	byDay := make(map[string]domain.UsageLine, len(lines))
	for _, l := range lines {
		byDay[l.Group] = l
	}
	var out []domain.UsageLine
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		name := day.Format(time.DateOnly)
		l, ok := byDay[name]
		if !ok {
			l = domain.UsageLine{Group: name}
		}
		out = append(out, l)
	}
	return out
}
