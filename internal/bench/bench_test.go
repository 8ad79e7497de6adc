package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

func chatBody(stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":          "bench-chat",
		"messages":       []map[string]string{{"role": "user", "content": "Say hello."}},
		"stream":         stream,
		"stream_options": map[string]bool{"include_usage": stream},
	})
	return b
}

// post sends body to url and returns the response's status, header and body.
func post(t *testing.T, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestMockAnswersChat(t *testing.T) {
	srv := httptest.NewServer(bench.NewMock(bench.MockOptions{}))
	defer srv.Close()
	status, _, body := post(t, srv.URL+"/v1/chat/completions", chatBody(false))
	var got struct {
		Object  string
		Model   string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if status != 200 || got.Object != "chat.completion" || got.Model != "bench-chat" || len(got.Choices) != 1 {
		t.Fatalf("status %d, completion %+v", status, got)
	}
	if c := got.Choices[0]; c.Message.Role != "assistant" || c.Message.Content != bench.DefaultReply || c.FinishReason != "stop" {
		t.Errorf("choice %+v", c)
	}
	if u := got.Usage; u.PromptTokens == 0 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v", u)
	}
}

func TestMockStreamsChat(t *testing.T) {
	reply := "Grüße aus dem Mock, in Stücken."
	srv := httptest.NewServer(bench.NewMock(bench.MockOptions{Reply: reply, Chunks: 4, ChunkDelay: time.Millisecond}))
	defer srv.Close()
	_, hdr, body := post(t, srv.URL+"/v1/chat/completions", chatBody(true))
	if ct := hdr.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var content strings.Builder
	var events, finishes, usages int
	done := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if done {
			t.Fatalf("event after [DONE]: %s", data)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		events++
		var chunk struct {
			Object  string
			Choices []struct {
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
			Usage *struct {
				TotalTokens int `json:"total_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil || chunk.Object != "chat.completion.chunk" {
			t.Fatalf("event %q: %v", data, err)
		}
		for _, c := range chunk.Choices {
			content.WriteString(c.Delta.Content)
			if c.FinishReason != nil {
				finishes++
			}
		}
		if chunk.Usage != nil && chunk.Usage.TotalTokens > 0 {
			usages++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !done || content.String() != reply || finishes != 1 || usages != 1 || events != 4+3 {
		t.Errorf("done %t, content %q, %d finish reasons, %d usage chunks, %d events", done, content.String(), finishes, usages, events)
	}
}

func TestMockAnswersEmbeddingsAndRefusesTheRest(t *testing.T) {
	srv := httptest.NewServer(bench.NewMock(bench.MockOptions{}))
	defer srv.Close()
	_, _, body := post(t, srv.URL+"/v1/embeddings", []byte(`{"model":"e","input":["a","b"],"dimensions":4}`))
	var got struct {
		Data []struct{ Embedding []float64 }
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.Data) != 2 || len(got.Data[1].Embedding) != 4 {
		t.Errorf("embeddings %+v, %v", got, err)
	}
	_, err := bench.Do(context.Background(), srv.Client(), bench.Request{URL: srv.URL + "/v1/nothing"})
	if se, ok := errors.AsType[*bench.StatusError](err); !ok || se.Status != 404 || !strings.Contains(se.Body, "not_found") {
		t.Errorf("GET /v1/nothing: %v", err)
	}
	if status, _, _ := post(t, srv.URL+"/v1/chat/completions", []byte(`{"messages":[]}`)); status != 400 {
		t.Errorf("a chat request without a model: status %d", status)
	}
}

// TestLoadThroughReverseProxy is the harness's smoke test: a tiny
// interleaved run and a short closed loop through the reverse-proxy floor
// produce the samples asked for, in a sane order, with no failure.
func TestLoadThroughReverseProxy(t *testing.T) {
	mock := bench.NewMock(bench.MockOptions{})
	upstream := httptest.NewServer(mock)
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	proxy := httptest.NewServer(bench.NewProxy(target))
	defer proxy.Close()

	client := bench.NewClient(4)
	hdr := http.Header{"Content-Type": {"application/json"}}
	cases := []bench.Case{
		{Name: "direct", Req: bench.Request{URL: upstream.URL + "/v1/chat/completions", Body: chatBody(false), Header: hdr}},
		{Name: "proxy", Req: bench.Request{URL: proxy.URL + "/v1/chat/completions", Body: chatBody(false), Header: hdr}},
		{Name: "proxy stream", Req: bench.Request{URL: proxy.URL + "/v1/chat/completions", Body: chatBody(true), Header: hdr}},
	}
	results, err := bench.Interleave(context.Background(), client, cases, 3, 20, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		s := res.Samples
		if len(s) != 60 || res.Failures != 0 || res.FirstErr != nil {
			t.Fatalf("%s: %d samples (want 60), %d failures, %v", cases[i].Name, len(s), res.Failures, res.FirstErr)
		}
		for _, x := range s {
			if x.TTFB <= 0 || x.TTFB > x.Total {
				t.Fatalf("%s: sample %+v", cases[i].Name, x)
			}
		}
		sum := bench.Summarize(bench.Totals(s))
		ordered := sum.Min <= sum.P50 && sum.P50 <= sum.P90 && sum.P90 <= sum.P99 && sum.P99 <= sum.Max
		if sum.N != 60 || !ordered || sum.Min <= 0 {
			t.Errorf("%s: summary %+v", cases[i].Name, sum)
		}
	}
	if got := mock.Served(); got != 3*(20*3+5) {
		t.Errorf("mock served %d requests, want %d", got, 3*(20*3+5))
	}

	tp := bench.ClosedLoop(context.Background(), client, cases[1].Req, 4, 200*time.Millisecond)
	if tp.Succeeded == 0 || tp.Failed != 0 || tp.FirstErr != nil || tp.PerSecond() <= 0 || tp.Latency.N != tp.Succeeded {
		t.Errorf("closed loop: %+v", tp)
	}
}

// TestWarmLetsItsLastRequestsFinish checks that Warm returns only once
// every request it sent has been answered: none is still running in the
// target when the measured run begins.
func TestWarmLetsItsLastRequestsFinish(t *testing.T) {
	var started, finished atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer finished.Add(1)
		time.Sleep(20 * time.Millisecond)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	ok := bench.Warm(context.Background(), bench.NewClient(4), bench.Request{URL: srv.URL, Body: chatBody(false)}, 4, 50*time.Millisecond)
	if s, f := started.Load(), finished.Load(); s == 0 || s != f || int64(ok) != s {
		t.Fatalf("after Warm the target had started %d requests and finished %d, %d answered; want all finished and answered", s, f, ok)
	}
}

func TestInterleaveStopsOnACaseThatFails(t *testing.T) {
	srv := httptest.NewServer(bench.NewMock(bench.MockOptions{}))
	defer srv.Close()
	cases := []bench.Case{
		{Name: "good", Req: bench.Request{URL: srv.URL + "/v1/chat/completions", Body: chatBody(false)}},
		{Name: "missing", Req: bench.Request{URL: srv.URL + "/v1/missing"}},
	}
	_, err := bench.Interleave(context.Background(), bench.NewClient(1), cases, 2, 10, 0)
	if se, ok := errors.AsType[*bench.StatusError](err); !ok || se.Status != 404 || !strings.Contains(err.Error(), "missing: 6 requests failed") {
		t.Errorf("Interleave over a failing case: %v", err)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.01, 1}, {50, 500}, {90, 900}, {99, 990}, {99.9, 999}, {100, 1000}} {
		if got := bench.Percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := bench.Percentile(d[:1], 99); got != 1 {
		t.Errorf("p99 of one sample = %d", got)
	}
	if got := bench.Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %d", got)
	}
	s := bench.Summarize([]time.Duration{3, 1, 2})
	if s.N != 3 || s.Min != 1 || s.P50 != 2 || s.Max != 3 || s.Mean != 2 {
		t.Errorf("summary of 3, 1, 2: %+v", s)
	}
}

func TestWriteChartIsWellFormedSVG(t *testing.T) {
	var a, b []time.Duration
	for i := range 500 {
		a = append(a, time.Duration(20+i%7)*time.Microsecond)
		b = append(b, time.Duration(300+i)*time.Microsecond)
	}
	var buf bytes.Buffer
	err := bench.WriteChart(&buf, "Latency <c=1>", []bench.Panel{
		{Title: "chat", Series: []bench.Series{{Name: "direct", Samples: a}, {Name: "gateway & co", Samples: b}}},
		{Title: "empty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	polylines := 0
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "polyline" {
				polylines++
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want 2", polylines)
	}
	for _, want := range []string{"Latency <c=1>", "gateway & co", "direct (p50 ", "99.9%"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("chart text lacks %q", want)
		}
	}
}

func TestFormatBenchmarkIsGoTestOutput(t *testing.T) {
	r := testing.BenchmarkResult{N: 1000, T: 2 * time.Millisecond, MemAllocs: 3000, MemBytes: 64000}
	line := bench.FormatBenchmark("Pool/pgxpool", r)
	fields := strings.Split(line, "\t")
	if !strings.HasPrefix(fields[0], "BenchmarkPool/pgxpool-") || strings.TrimSpace(fields[1]) != "1000" ||
		strings.TrimSpace(fields[2]) != "2000 ns/op" || strings.TrimSpace(fields[3]) != "64 B/op" || strings.TrimSpace(fields[4]) != "3 allocs/op" {
		t.Errorf("line %q", line)
	}
}
