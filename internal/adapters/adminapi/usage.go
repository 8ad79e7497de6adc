package adminapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// usageReportJSON answers GET /usage as JSON.
type usageReportJSON struct {
	Object  string          `json:"object"`
	GroupBy string          `json:"group_by"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Data    []usageLineJSON `json:"data"`
}

type usageLineJSON struct {
	Group             string    `json:"group"`
	Requests          int64     `json:"requests"`
	PromptTokens      int64     `json:"prompt_tokens"`
	CompletionTokens  int64     `json:"completion_tokens"`
	CostUSD           string    `json:"cost_usd"`
	TraceIDs          *[]string `json:"trace_ids,omitempty"`           // with include=trace_ids
	TraceIDsTruncated *bool     `json:"trace_ids_truncated,omitempty"` // with include=trace_ids
}

// usage serves GET /usage: settled calls by team, user, model or day from
// one UTC day to another (both included), as JSON, or as CSV with
// Accept: text/csv or format=csv; include=trace_ids lists each row's
// MLflow trace IDs.
func (h *handler) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	uq := domain.UsageQuery{GroupBy: q.Get("group_by"), Team: q.Get("team"), User: q.Get("user"), Model: q.Get("model")}
	for _, d := range []struct {
		param string
		into  *time.Time
	}{{"from", &uq.From}, {"to", &uq.To}} {
		v := q.Get(d.param)
		if v == "" {
			h.writeError(w, r, domain.InvalidParam(d.param, "%s is required: a UTC day such as 2026-12-01", d.param))
			return
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			h.writeError(w, r, domain.InvalidParam(d.param, "%s %q is not a valid date: a UTC day as YYYY-MM-DD, such as 2026-12-01", d.param, v))
			return
		}
		*d.into = t
	}
	switch inc := q.Get("include"); inc {
	case "":
	case "trace_ids":
		uq.TraceIDs = true
	default:
		h.writeError(w, r, domain.InvalidParam("include", "include may only be trace_ids"))
		return
	}
	format := q.Get("format")
	switch {
	case format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv"):
		format = "csv"
	case format == "":
		format = "json"
	case format != "json" && format != "csv":
		h.writeError(w, r, domain.InvalidParam("format", "format must be json or csv"))
		return
	}
	lines, err := h.svc.UsageReport(r.Context(), actorOf(r), uq)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if format == "csv" {
		h.writeUsageCSV(w, uq, lines)
		return
	}
	rep := usageReportJSON{Object: "admin.usage_report", GroupBy: uq.GroupBy, From: uq.From.Format(time.DateOnly),
		To: uq.To.Format(time.DateOnly), Data: []usageLineJSON{}}
	for _, l := range lines {
		j := usageLineJSON{Group: l.Group, Requests: l.Requests, PromptTokens: l.PromptTokens,
			CompletionTokens: l.CompletionTokens, CostUSD: usd(l.Cost)}
		if uq.TraceIDs {
			j.TraceIDs, j.TraceIDsTruncated = &l.TraceIDs, &l.TraceIDsTruncated
		}
		rep.Data = append(rep.Data, j)
	}
	h.writeJSON(w, http.StatusOK, rep)
}

// writeUsageCSV answers with the report as CSV: a header row naming the
// grouping, then one row per group; trace IDs, when asked for, are
// separated by spaces in one column.
func (h *handler) writeUsageCSV(w http.ResponseWriter, q domain.UsageQuery, lines []domain.UsageLine) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="usage-by-`+q.GroupBy+`.csv"`)
	cw := csv.NewWriter(w)
	head := []string{q.GroupBy, "requests", "prompt_tokens", "completion_tokens", "cost_usd"}
	if q.TraceIDs {
		head = append(head, "trace_ids", "trace_ids_truncated")
	}
	_ = cw.Write(head)
	for _, l := range lines {
		row := []string{csvSafe(l.Group), strconv.FormatInt(l.Requests, 10), strconv.FormatInt(l.PromptTokens, 10),
			strconv.FormatInt(l.CompletionTokens, 10), usd(l.Cost)}
		if q.TraceIDs {
			row = append(row, strings.Join(l.TraceIDs, " "), strconv.FormatBool(l.TraceIDsTruncated))
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		h.log.Warn("writing a usage report failed", "err", err)
	}
}

// csvSafe keeps a spreadsheet from reading a user's or team's name as a
// formula: a leading =, +, - or @ gets a quote before it.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
