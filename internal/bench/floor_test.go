package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

func TestFsyncProbeAppendsAndSyncsInItsDirectory(t *testing.T) {
	dir := t.TempDir()
	p, err := bench.NewFsyncProbe(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s, err := p.Measure(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Total <= 0 || s.TTFB != s.Total {
			t.Errorf("sample %+v", s)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("files in the directory: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Size() != 3*bench.AppendSize {
		t.Errorf("the probe's file after three appends: %v, %v", fi, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("Close left %v", files)
	}
}

// TestInterleaveRunsMeasureCasesInRounds checks that a case with Measure is
// interleaved like a request, and that each round's samples can be told
// apart, failures left out.
func TestInterleaveRunsMeasureCasesInRounds(t *testing.T) {
	calls := 0
	counting := func(context.Context) (bench.Sample, error) {
		calls++
		return bench.Sample{Total: time.Duration(calls)}, nil
	}
	flakyCalls := 0
	flaky := func(context.Context) (bench.Sample, error) {
		flakyCalls++
		if flakyCalls == 3 || flakyCalls == 150 { // one in the warm-up, one in round 1 (calls 111–210)
			return bench.Sample{}, errors.New("a failure")
		}
		return bench.Sample{Total: time.Duration(flakyCalls)}, nil
	}
	cases := []bench.Case{{Name: "counting", Measure: counting}, {Name: "flaky", Measure: flaky}}
	res, err := bench.Interleave(context.Background(), nil, cases, 3, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 310 {
		t.Errorf("Measure called %d times, want 310 (10 warm-up, 3 rounds of 100)", calls)
	}
	if got := res[0].RoundEnds; !slices.Equal(got, []int{100, 200, 300}) {
		t.Errorf("counting: RoundEnds %v", got)
	}
	if r1 := res[0].Round(1); len(r1) != 100 || r1[0].Total != 111 || r1[99].Total != 210 {
		t.Errorf("counting: round 1 holds %d samples, from %v to %v", len(r1), r1[0].Total, r1[len(r1)-1].Total)
	}
	if got := res[1].RoundEnds; !slices.Equal(got, []int{100, 199, 299}) || res[1].Failures != 2 || res[1].FirstErr == nil {
		t.Errorf("flaky: RoundEnds %v, %d failures (%v)", got, res[1].Failures, res[1].FirstErr)
	}
	if r2 := res[1].Round(2); len(r2) != 100 || r2[0].Total != 211 {
		t.Errorf("flaky: round 2 holds %d samples, the first %v", len(r2), r2[0].Total)
	}
}

func TestMockAnswersResponses(t *testing.T) {
	srv := httptest.NewServer(bench.NewMock(bench.MockOptions{Reply: "Hello, benchmark.", Chunks: 3}))
	defer srv.Close()
	status, _, body := post(t, srv.URL+"/v1/responses", []byte(`{"model":"bench-chat","input":"Hi.","store":false}`))
	var got struct {
		Object, Status, Model string
		Output                []struct {
			Type    string
			Content []struct{ Type, Text string }
		}
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if status != 200 || got.Object != "response" || got.Status != "completed" || got.Model != "bench-chat" || len(got.Output) != 1 ||
		got.Output[0].Type != "message" || len(got.Output[0].Content) != 1 || got.Output[0].Content[0].Text != "Hello, benchmark." ||
		got.Usage.InputTokens == 0 || got.Usage.OutputTokens == 0 {
		t.Errorf("status %d, response %s", status, body)
	}

	status, header, body := post(t, srv.URL+"/v1/responses", []byte(`{"model":"bench-chat","input":"Hi.","stream":true}`))
	var types []string
	text := ""
	for line := range strings.SplitSeq(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type, Delta string
			Response    *struct {
				Usage *struct {
					OutputTokens int `json:"output_tokens"`
				}
			}
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		types = append(types, ev.Type)
		text += ev.Delta
		if ev.Type == "response.completed" && (ev.Response == nil || ev.Response.Usage == nil || ev.Response.Usage.OutputTokens == 0) {
			t.Errorf("response.completed without usage: %s", data)
		}
	}
	want := "response.created,response.output_text.delta,response.output_text.delta,response.output_text.delta,response.completed"
	if status != 200 || header.Get("Content-Type") != "text/event-stream" || strings.Join(types, ",") != want || text != "Hello, benchmark." {
		t.Errorf("status %d, events %v, text %q", status, types, text)
	}
}
