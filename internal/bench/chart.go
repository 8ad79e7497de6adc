package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Series is one latency distribution on a chart.
type Series struct {
	Name    string
	Samples []time.Duration
}

// Panel is one plot of several latency distributions.
type Panel struct {
	Title  string
	Series []Series
}

// Chart geometry, in SVG user units.
const (
	panelWidth  = 520.0
	panelHeight = 380.0
	marginLeft  = 64.0
	marginRight = 16.0
	marginTop   = 56.0
	marginBot   = 48.0
	maxNines    = 3.0 // the x axis ends at 99.9 %
	plotPoints  = 240
)

var palette = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d"}

// WriteChart draws panels side by side as one SVG image. Each panel is a
// percentile distribution, as HDR histograms are plotted: the x axis is the
// percentile on a scale of 1/(1−p), so that 90 %, 99 % and 99.9 % are evenly
// spaced, and the y axis is the latency on a log scale. Only the standard
// library writes it; the image needs no fonts beyond a sans-serif.
func WriteChart(w io.Writer, title string, panels []Panel) error {
	bw := bufio.NewWriter(w)
	width := panelWidth * float64(max(1, len(panels)))
	height := panelHeight + 28
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%.0f" y="20" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, html.EscapeString(title))
	for i, p := range panels {
		writePanel(bw, p, float64(i)*panelWidth, 28)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func writePanel(w io.Writer, p Panel, ox, oy float64) {
	left, top := ox+marginLeft, oy+marginTop
	plotW := panelWidth - marginLeft - marginRight
	plotH := panelHeight - marginTop - marginBot
	sorted := make([][]time.Duration, len(p.Series))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range p.Series {
		sorted[i] = slices.Clone(s.Samples)
		slices.Sort(sorted[i])
		if len(sorted[i]) == 0 {
			continue
		}
		lo = min(lo, micros(sorted[i][0]))
		hi = max(hi, micros(Percentile(sorted[i], 99.9)))
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13">%s</text>`+"\n", left+plotW/2, oy+18, html.EscapeString(p.Title))
	if math.IsInf(lo, 0) {
		return
	}
	ylo, yhi := math.Log10(niceBelow(max(lo, 1))), math.Log10(niceAbove(max(hi, lo*1.5, 2)))
	x := func(nines float64) float64 { return left + nines/maxNines*plotW }
	y := func(us float64) float64 {
		return top + plotH - (math.Log10(max(us, 1))-ylo)/(yhi-ylo)*plotH
	}

	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`+"\n", left, top, plotW, plotH)
	for _, t := range []struct {
		nines float64
		label string
	}{{0, "0%"}, {math.Log10(2), "50%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}} {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(t.nines), top, x(t.nines), top+plotH)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t.nines), top+plotH+16, t.label)
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile</text>`+"\n", left+plotW/2, top+plotH+36)
	for _, us := range yTicks(math.Pow(10, ylo), math.Pow(10, yhi)) {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(us), left+plotW, y(us))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(us)+4, usLabel(us))
	}
	fmt.Fprintf(w, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">latency (log scale)</text>`+"\n", ox+14, top+plotH/2)

	for i, s := range p.Series {
		if len(sorted[i]) == 0 {
			continue
		}
		colour := palette[i%len(palette)]
		var pts strings.Builder
		for k := range plotPoints + 1 {
			nines := maxNines * float64(k) / plotPoints
			pct := 100 * (1 - math.Pow(10, -nines))
			v := sorted[i][0]
			if pct > 0 {
				v = Percentile(sorted[i], pct)
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(nines), y(micros(v)))
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colour, strings.TrimSpace(pts.String()))
		ly := top + 16 + float64(i)*16
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", left+10, ly-4, left+28, ly-4, colour)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s (p50 %s, p99 %s)</text>`+"\n", left+34, ly,
			html.EscapeString(s.Name), usLabel(micros(Percentile(sorted[i], 50))), usLabel(micros(Percentile(sorted[i], 99))))
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// niceBelow and niceAbove round v down or up to 1, 2 or 5 times a power of ten.
func niceBelow(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= v {
			return m * e
		}
	}
	return e
}

func niceAbove(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// yTicks returns 1, 2, 5 × powers of ten between lo and hi.
func yTicks(lo, hi float64) []float64 {
	var out []float64
	for e := math.Pow(10, math.Floor(math.Log10(lo))); e <= hi; e *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * e; v >= lo*0.999 && v <= hi*1.001 {
				out = append(out, v)
			}
		}
	}
	return out
}

// usLabel writes a number of microseconds as µs or ms.
func usLabel(us float64) string {
	switch {
	case us >= 1000:
		return fmt.Sprintf("%.3g ms", us/1000)
	default:
		return fmt.Sprintf("%.3g µs", us)
	}
}
