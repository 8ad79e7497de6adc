package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/google/pprof/profile"
)

// cpuShare returns the fraction of a CPU profile's time (the pprof format
// Go's runtime/pprof writes) spent in samples with a frame, inlined ones
// included, whose function name starts with prefix.
func cpuShare(data []byte, prefix string) (float64, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("profile: %w", err)
	}
	// The value to weigh samples by: CPU time when the profile has it
	// (Go's: samples/count and cpu/nanoseconds), else the first.
	index := 0
	for i, t := range p.SampleType {
		if t.Type == "cpu" {
			index = i
		}
	}
	var total, in int64
	for _, s := range p.Sample {
		if index >= len(s.Value) {
			continue
		}
		v := s.Value[index]
		total += v
		if hasFrame(s, prefix) {
			in += v
		}
	}
	if total == 0 {
		return 0, errors.New("profile: no samples")
	}
	return float64(in) / float64(total), nil
}

// hasFrame reports whether one of s's frames is a function whose name
// starts with prefix.
func hasFrame(s *profile.Sample, prefix string) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && strings.HasPrefix(line.Function.Name, prefix) {
				return true
			}
		}
	}
	return false
}
