package console

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tidygate/tidygate/internal/domain"
)

// usageChart is one chart of the usage page, drawn as SVG on the server,
// and the table of its numbers: bars for teams and models, columns over
// time for days. Coordinates are in the SVG's viewBox, which the
// stylesheet scales to the page's width.
type usageChart struct {
	ID, Name, Plural string // the grouping: team, Team, teams
	Metric           usageMetric
	Rows             []domain.UsageLine
	Total            domain.UsageLine
	Width, Height    float64
	Marks            []mark     // a bar or column per row
	Ticks            []mark     // the day axis's labels, for columns
	Description      string     // the SVG's desc: what it shows, in words
	Columns          bool       // columns over time, not bars
	Baseline         [4]float64 // the day axis: x1, y1, x2, y2
}

// mark is one bar or column, or one label of the day axis.
type mark struct {
	X, Y, W, H     float64
	Label          string // the group, as the chart shows it (clipped)
	LabelX, LabelY float64
	Value          string // the metric's value, as the chart shows it
	ValueX, ValueY float64
	Title          string // the group and its value in full, the mark's tooltip
	Anchor         string // how a label of the day axis lines up with LabelX: start or middle
}

// The geometry of the charts, in viewBox units.
const (
	chartWidth   = 720.0
	barLabelW    = 190.0 // the names left of the bars
	barValueW    = 130.0 // the values right of the bars
	barRow       = 28.0
	barThickness = 18.0
	columnTop    = 24.0
	columnBottom = 200.0
	columnHeight = 240.0
	chartLabel   = 26 // the longest name a chart shows, in characters; the table has it whole
)

// format renders the metric's value v: dollars for cost, else a count.
func (m usageMetric) format(v int64) string {
	if m.Name == "cost" {
		return domain.Micros(v).String()
	}
	return strconv.FormatInt(v, 10)
}

// newUsageChart lays out the chart of lines, which report usage by the
// grouping by, drawing metric.
func newUsageChart(by, name, plural string, metric usageMetric, lines []domain.UsageLine) usageChart {
	c := usageChart{ID: by, Name: name, Plural: plural, Metric: metric, Rows: lines, Width: chartWidth, Columns: by == domain.GroupByDay}
	var largest int64
	for _, l := range lines {
		c.Total.Requests += l.Requests
		c.Total.PromptTokens += l.PromptTokens
		c.Total.CompletionTokens += l.CompletionTokens
		c.Total.Cost += l.Cost
		largest = max(largest, metric.of(l))
	}
	scale := func(v int64, length float64) float64 {
		if largest == 0 {
			return 0
		}
		return round1(float64(v) / float64(largest) * length)
	}
	if c.Columns {
		c.layColumns(largest, scale)
	} else {
		c.layBars(scale)
	}
	switch {
	case len(lines) == 0:
		c.Description = "No settled calls: the chart is empty."
	case c.Columns:
		c.Description = fmt.Sprintf("Columns of the %s of each day from %s to %s, from left to right; the largest is %s. The table below gives every number.",
			metric.Label, lines[0].Group, lines[len(lines)-1].Group, metric.format(largest))
	default:
		c.Description = fmt.Sprintf("Bars of the %s of %d %s, in the order of the table below, which gives every number; the largest is %s.",
			metric.Label, len(lines), plural, metric.format(largest))
	}
	return c
}

// layBars draws a horizontal bar per line: its name left of it, its value
// right of it.
func (c *usageChart) layBars(scale func(int64, float64) float64) {
	c.Height = max(barRow, float64(len(c.Rows))*barRow) + 4
	for i, l := range c.Rows {
		v := c.Metric.of(l)
		top := float64(i)*barRow + 4
		m := mark{X: barLabelW, Y: top, W: scale(v, chartWidth-barLabelW-barValueW), H: barThickness,
			Label: clipRunes(l.Group, chartLabel), LabelX: barLabelW - 8, LabelY: top + barThickness/2,
			Value: c.Metric.format(v), Title: l.Group + ": " + c.Metric.format(v)}
		m.ValueX, m.ValueY = m.X+m.W+6, m.LabelY
		c.Marks = append(c.Marks, m)
	}
}

// layColumns draws a column per day, left to right, over a baseline
// labelled with at most eight of the days.
func (c *usageChart) layColumns(largest int64, scale func(int64, float64) float64) {
	c.Height = columnHeight
	c.Baseline = [4]float64{0, columnBottom, chartWidth, columnBottom}
	n := len(c.Rows)
	if n == 0 {
		return
	}
	slot := chartWidth / float64(n)
	every := int(math.Ceil(float64(n) / 7))
	for i, l := range c.Rows {
		v := c.Metric.of(l)
		h := scale(v, columnBottom-columnTop)
		x := float64(i) * slot
		c.Marks = append(c.Marks, mark{X: round1(x + slot*0.1), Y: round1(columnBottom - h), W: round1(slot * 0.8), H: h,
			Title: l.Group + ": " + c.Metric.format(v)})
		switch {
		case i == 0:
			c.Ticks = append(c.Ticks, mark{LabelX: round1(x), LabelY: columnBottom + 20, Label: l.Group, Anchor: "start"})
		case i%every == 0:
			c.Ticks = append(c.Ticks, mark{LabelX: round1(x + slot/2), LabelY: columnBottom + 20, Label: l.Group, Anchor: "middle"})
		}
	}
	if largest > 0 {
		c.Ticks = append(c.Ticks, mark{LabelX: 0, LabelY: columnTop - 8, Label: "largest: " + c.Metric.format(largest), Anchor: "start"})
	}
}

// round1 rounds x to a tenth, enough for a chart and short in the markup.
func round1(x float64) float64 { return math.Round(x*10) / 10 }

// clipRunes shortens s to at most n characters, marking the cut.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
