package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"testing"
	"time"
)

func TestParseStatCPUAddsUserAndSystemTicks(t *testing.T) {
	// A command name with a space and a parenthesis: the fields are counted
	// from the last ')'. utime 1234 and stime 66 ticks of 1/100 s.
	line := "4242 (post gres: a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 66 0 0 20 0 1 0 100 1000 10 18446744073709551615\n"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 13 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 no parenthesis 1 2 3", "1 (x) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCPUUsedCountsNewProcessesFromTheirStart(t *testing.T) {
	before := cpuSnapshot{"pg": {1: 2 * time.Second, 2: time.Second}, "tg": {9: 5 * time.Second}}
	// Backend 2 exited, 3 started.
	after := cpuSnapshot{"pg": {1: 3 * time.Second, 3: 500 * time.Millisecond}, "tg": {9: 7 * time.Second}}
	used := cpuUsed(before, after)
	if used["pg"] != 1500*time.Millisecond || used["tg"] != 2*time.Second {
		t.Errorf("used %v", used)
	}
}

func TestMergeKeepsTheLastCPUSeenOfExitedProcesses(t *testing.T) {
	seen := cpuSnapshot{"pg": {1: time.Second, 2: time.Second}}
	seen.merge(cpuSnapshot{"pg": {1: 3 * time.Second, 3: 100 * time.Millisecond}, "tg": {9: time.Second}}) // 2 exited
	seen.merge(cpuSnapshot{"pg": {1: 2 * time.Second, 3: 400 * time.Millisecond}})                         // a stale read of 1
	want := cpuSnapshot{"pg": {1: 3 * time.Second, 2: time.Second, 3: 400 * time.Millisecond}, "tg": {9: time.Second}}
	for g, pids := range want {
		for pid, d := range pids {
			if seen[g][pid] != d {
				t.Errorf("%s %d: %v, want %v", g, pid, seen[g][pid], d)
			}
		}
	}
	if len(seen["pg"]) != 3 {
		t.Errorf("pg: %v", seen["pg"])
	}
}

func TestLoggingCostAndBound(t *testing.T) {
	ms := time.Millisecond
	on := cpuRun{calls: 1000, written: 800, share: 0.25,
		used:    map[string]time.Duration{cpuTidygate: 400 * ms, cpuPostgres: 500 * ms, cpuClient: 100 * ms, cpuMock: 100 * ms},
		drained: map[string]time.Duration{cpuTidygate: 60 * ms, cpuPostgres: 100 * ms}}
	off := cpuRun{calls: 2000, used: map[string]time.Duration{
		cpuTidygate: 600 * ms, cpuPostgres: 400 * ms, cpuClient: 200 * ms, cpuMock: 200 * ms}}
	c := newLoggingCost(on, off)
	// tidygate: a quarter of its 400 ms under the load, and its 60 ms after
	// it, for 800 records.
	if got := c.tidygateLog(); got != 200*time.Microsecond {
		t.Errorf("tidygate's logging %v, want 200µs", got)
	}
	// PostgreSQL: 500 + 100 ms with logging on, against 200 µs a call off
	// (200 ms for 1000 calls): 400 ms more, for 800 records.
	if got := c.postgresLog(); got != 500*time.Microsecond {
		t.Errorf("PostgreSQL's logging %v, want 500µs", got)
	}
	if got := c.log(); got != 700*time.Microsecond {
		t.Errorf("logging %v, want 700µs", got)
	}
	if got := c.offCPU(); got != 700*time.Microsecond {
		t.Errorf("off, all %v, want 700µs", got)
	}
	if got := c.offCPU(cpuTidygate, cpuPostgres); got != 500*time.Microsecond {
		t.Errorf("off, tidygate and PostgreSQL %v, want 500µs", got)
	}
	if got := cpuBound(c.offCPU(), c.log()); got != 0.5 {
		t.Errorf("bound %v, want 0.5", got)
	}
	if got := cpuBound(c.offCPU(cpuTidygate, cpuPostgres), c.log()); math.Abs(got-500.0/1200) > 1e-12 {
		t.Errorf("bound %v, want %v", got, 500.0/1200)
	}
	// With no traces counted the calls stand in for them.
	on.written = 0
	if got := newLoggingCost(on, off).postgresLog(); got != 400*time.Microsecond {
		t.Errorf("PostgreSQL's logging per call %v, want 400µs", got)
	}
	if cpuBound(0, 0) != 0 || cpuBound(time.Second, 0) != 1 {
		t.Error("bound at the edges")
	}
}

// protoBuf writes protocol buffers fields, for the profile the test reads.
type protoBuf struct{ bytes.Buffer }

func (b *protoBuf) varint(field int, v uint64) {
	b.Write(binary.AppendUvarint(nil, uint64(field)<<3))
	b.Write(binary.AppendUvarint(nil, v))
}

func (b *protoBuf) bytes(field int, data []byte) {
	b.Write(binary.AppendUvarint(nil, uint64(field)<<3|2))
	b.Write(binary.AppendUvarint(nil, uint64(len(data))))
	b.Write(data)
}

func (b *protoBuf) packed(field int, vs ...uint64) {
	var p []byte
	for _, v := range vs {
		p = binary.AppendUvarint(p, v)
	}
	b.bytes(field, p)
}

func TestCPUShareWeighsSamplesWithAFrameInThePackage(t *testing.T) {
	var p protoBuf
	// Strings: 0 "", 1 samples, 2 count, 3 cpu, 4 nanoseconds, 5..7 functions.
	for _, s := range []string{"", "samples", "count", "cpu", "nanoseconds",
		"github.com/tidygate/tidygate/internal/adapters/mlflow.(*writer).run", "runtime.mallocgc", "main.main"} {
		p.bytes(profileStringTable, []byte(s))
	}
	valueType := func(typ, unit uint64) []byte {
		var v protoBuf
		v.varint(valueTypeType, typ)
		v.varint(2, unit)
		return v.Bytes()
	}
	p.bytes(profileSampleType, valueType(1, 2))
	p.bytes(profileSampleType, valueType(3, 4))
	for id, name := range map[uint64]uint64{10: 5, 11: 6, 12: 7} {
		var f protoBuf
		f.varint(functionID, id)
		f.varint(functionName, name)
		p.bytes(profileFunction, f.Bytes())
	}
	// Location 2 inlines mallocgc into the writer: two lines.
	for id, fns := range map[uint64][]uint64{1: {11}, 2: {11, 10}, 3: {12}} {
		var l protoBuf
		l.varint(locationID, id)
		for _, fn := range fns {
			var line protoBuf
			line.varint(lineFunctionID, fn)
			l.bytes(locationLine, line.Bytes())
		}
		p.bytes(profileLocation, l.Bytes())
	}
	sample := func(values []uint64, locs ...uint64) {
		var s protoBuf
		if len(locs) > 2 {
			s.packed(sampleLocationID, locs...)
		} else {
			for _, l := range locs {
				s.varint(sampleLocationID, l)
			}
		}
		s.packed(sampleValue, values...)
		p.bytes(profileSample, s.Bytes())
	}
	// CPU nanoseconds 30 in the writer (through the inlined frame), 70 not;
	// the sample counts (9 and 1) would give another share.
	sample([]uint64{9, 30}, 1, 2, 3)
	sample([]uint64{1, 70}, 1, 3)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(p.Bytes())
	_ = zw.Close()
	got, err := cpuShare(gz.Bytes(), callLogPackage)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0.3 {
		t.Errorf("share %v, want 0.3", got)
	}
	if _, err := cpuShare([]byte{0x0a, 0x05}, callLogPackage); err == nil {
		t.Error("a truncated profile read without error")
	}
}
