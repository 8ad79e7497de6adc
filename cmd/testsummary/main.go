// Command testsummary reads `go test -json` on its standard input and
// writes what `go test` would have written without -v (each package's
// result line, the output of failed tests, build errors), then a closing
// summary: how many tests passed, failed and were skipped, and — loudly —
// every skipped test with the reason it gave, so that a run that silently
// skipped its integration tests cannot pass for a complete one.
//
//	go test -json ./... | go run ./cmd/testsummary
//
// It exits 1 when a test or a package failed, and 0 otherwise; `make test`
// also keeps go test's own exit status (pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is one skipped test and its reason.
type skip struct {
	pkg, test, reason string
}

// summary accumulates a run.
type summary struct {
	out            io.Writer
	passed, failed int
	skipped        []skip
	failedPkgs     []string
	outputs        map[string][]string // package + "\x00" + test → its output lines
	failing        bool
}

func main() {
	s := &summary{out: os.Stdout, outputs: map[string][]string{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		s.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	s.finish()
	if s.failing {
		os.Exit(1)
	}
}

// line handles one line of input: an event, or anything else go test
// printed (build errors arrive as plain text on some Go versions).
func (s *summary) line(b []byte) {
	var e event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil {
		fmt.Fprintln(s.out, string(b))
		return
	}
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "build-fail":
		s.failing = true
	case "output":
		if e.Test == "" {
			// Package-level output: the ok/FAIL lines, build errors, panics
			// outside a test. Drop go test's -v chatter.
			if !strings.HasPrefix(e.Output, "=== RUN") && !strings.HasPrefix(e.Output, "PASS\n") {
				fmt.Fprint(s.out, e.Output)
			}
			return
		}
		s.outputs[key] = append(s.outputs[key], e.Output)
	case "pass":
		if e.Test != "" {
			s.passed++
		}
		delete(s.outputs, key)
	case "skip":
		if e.Test != "" {
			s.skipped = append(s.skipped, skip{pkg: e.Package, test: e.Test, reason: reason(s.outputs[key])})
		}
		delete(s.outputs, key)
	case "fail":
		s.failing = true
		if e.Test == "" {
			s.failedPkgs = append(s.failedPkgs, e.Package)
			return
		}
		s.failed++
		for _, l := range s.outputs[key] {
			if !strings.HasPrefix(l, "=== ") {
				fmt.Fprint(s.out, l)
			}
		}
		delete(s.outputs, key)
	}
}

// location is the "file_test.go:12: " that t.Skip puts before a reason.
var location = regexp.MustCompile(`^[\w.-]+\.go:\d+: `)

// reason returns what a skipped test said, without go test's framing and
// without the file and line, so that tests skipped for one reason are
// listed together.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, location.ReplaceAllString(t, ""))
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

// finish writes the closing summary.
func (s *summary) finish() {
	fmt.Fprintln(s.out)
	fmt.Fprintf(s.out, "%d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
	if len(s.failedPkgs) > 0 {
		fmt.Fprintf(s.out, "FAILED packages: %s\n", strings.Join(s.failedPkgs, " "))
	}
	if len(s.skipped) == 0 {
		return
	}
	// Group by reason: one missing database skips many tests for one reason.
	byReason := map[string][]string{}
	for _, sk := range s.skipped {
		byReason[sk.reason] = append(byReason[sk.reason], strings.TrimPrefix(sk.pkg, "github.com/tidygate/tidygate/")+" "+sk.test)
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	bar := strings.Repeat("!", 78)
	fmt.Fprintf(s.out, "\n%s\n!!! %d TESTS WERE SKIPPED: this run did NOT test everything CI tests.\n", bar, len(s.skipped))
	for _, r := range reasons {
		tests := byReason[r]
		fmt.Fprintf(s.out, "!!!\n!!! %d skipped because: %s\n", len(tests), r)
		for _, t := range tests {
			fmt.Fprintf(s.out, "!!!     %s\n", t)
		}
	}
	fmt.Fprintf(s.out, "!!!\n!!! To run them: as root, `make test` installs and starts Docker and builds\n"+
		"!!! the PostgreSQL image (scripts/with-test-db.sh); or set TEST_DATABASE_URL.\n%s\n", bar)
}
