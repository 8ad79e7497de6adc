package main

import (
	"strings"
	"testing"
)

func run(t *testing.T, input string) (string, bool) {
	t.Helper()
	var out strings.Builder
	s := &summary{out: &out, outputs: map[string][]string{}}
	for l := range strings.SplitSeq(strings.TrimSpace(input), "\n") {
		s.line([]byte(l))
	}
	s.finish()
	return out.String(), s.failing
}

func TestSkipsAreListedLoudlyWithTheirReasons(t *testing.T) {
	out, failing := run(t, `
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestDB","Output":"=== RUN   TestDB\n"}
{"Action":"output","Package":"p","Test":"TestDB","Output":"    pgtest.go:244: pgtest: no PostgreSQL, skipping\n"}
{"Action":"output","Package":"p","Test":"TestDB","Output":"--- SKIP: TestDB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestDB"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}`)
	if failing {
		t.Error("a run with only passes and skips is failing")
	}
	for _, want := range []string{"ok  \tp\t0.1s", "1 passed, 0 failed, 1 skipped", "1 TESTS WERE SKIPPED",
		"1 skipped because: pgtest: no PostgreSQL, skipping", "p TestDB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN") || strings.Contains(out, "--- PASS") {
		t.Errorf("output has -v chatter:\n%s", out)
	}
}

func TestFailuresShowTheirOutputAndFail(t *testing.T) {
	out, failing := run(t, `
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: want 2, got 3\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- FAIL: TestB (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
{"ImportPath":"q","Action":"build-output","Output":"q/x.go:3:1: syntax error\n"}
{"ImportPath":"q","Action":"build-fail"}
not json: printed as is`)
	if !failing {
		t.Error("a run with a failure is not failing")
	}
	for _, want := range []string{"b_test.go:9: want 2, got 3", "--- FAIL: TestB", "FAIL\tp", "0 passed, 1 failed, 0 skipped",
		"FAILED packages: p", "q/x.go:3:1: syntax error", "not json: printed as is"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SKIPPED") {
		t.Errorf("no skips, yet:\n%s", out)
	}
}
