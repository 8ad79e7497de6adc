package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteDocsReplacesOnlyTheGeneratedPart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "BENCHMARKS.md")
	doc := "# Benchmarks\n\nHand-written method.\n\n" + beginMarker + "\nold tables\n" + endMarker + "\n\n## Findings\n\nHand-written findings.\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeDocs(dir, "new tables\n", []byte("<svg/>")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Benchmarks\n\nHand-written method.\n\n" + beginMarker + "\nnew tables\n\n" + endMarker + "\n\n## Findings\n\nHand-written findings.\n"
	if string(got) != want {
		t.Errorf("BENCHMARKS.md =\n%s\nwant\n%s", got, want)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "bench", "latency.svg")); err != nil || string(svg) != "<svg/>" {
		t.Errorf("chart %q, %v", svg, err)
	}
}

func TestWriteDocsRefusesAFileWithoutMarkers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# Someone's notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeDocs(dir, "tables\n", nil); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("writeDocs over a file without markers: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "# Someone's notes\n" {
		t.Errorf("the file was changed to %q", got)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-quick", "-only", "pools, writer"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.wants("pools") || !o.wants("writer") || o.wants("latency") || o.rounds != 2 || o.benchtime != 200*time.Millisecond {
		t.Errorf("options %+v", o)
	}
	for _, args := range [][]string{{"-only", "latency,nothing"}, {"-requests", "0"}, {"-duration", "-1s"}} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{us(42 * time.Microsecond), "42.0 µs"},
		{us(-1500 * time.Microsecond), "-1500 µs"},
		{us(12 * time.Millisecond), "12.0 ms"},
		{ratio(3, 2), "1.50×"},
		{ratio(3, 0), "n/a"},
		{mib(48 << 20), "48.0 MiB"},
		{field(strings.Fields("BenchmarkChat-2 100 22073 ns/op 11535 B/op 83 allocs/op"), "B/op"), "11535"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
