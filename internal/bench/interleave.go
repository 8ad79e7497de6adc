package bench

import (
	"context"
	"fmt"
	"net/http"
)

// Case is one thing the interleaved runner measures: a named request, or
// any other operation Measure times (a disk sync, a database round trip).
type Case struct {
	Name string
	Req  Request
	// Measure, when set, is called instead of sending Req.
	Measure func(context.Context) (Sample, error)
}

// CaseResult is what the interleaved runner measured for one case.
type CaseResult struct {
	Samples   []Sample // the successful requests, warm-up excluded
	RoundEnds []int    // len(Samples) at the end of each round
	Failures  int      // failed requests, warm-up included
	FirstErr  error    // the first failure, if any
}

// Round returns the samples of round i (from 0).
func (r CaseResult) Round(i int) []Sample {
	start := 0
	if i > 0 {
		start = r.RoundEnds[i-1]
	}
	return r.Samples[start:r.RoundEnds[i]]
}

// Interleave measures cases at concurrency 1 in rounds: each round sends
// perRound requests to every case in turn, starting one case later than
// the round before, so that drift on the machine (other processes, CPU
// frequency, the garbage collector of a long run) falls on every case
// alike. Each case first gets warmup requests that are not recorded.
//
// A failed request is counted and the run goes on, so that one reset
// connection does not void minutes of measurement; a case whose failures
// exceed 1 % of its requests (and 5) stops the run with an error. It
// returns the results in the order of cases.
func Interleave(ctx context.Context, c *http.Client, cases []Case, rounds, perRound, warmup int) ([]CaseResult, error) {
	out := make([]CaseResult, len(cases))
	limit := max(5, (warmup+rounds*perRound)/100)
	send := func(i, n int, record bool) error {
		res := &out[i]
		measure := cases[i].Measure
		if measure == nil {
			measure = func(ctx context.Context) (Sample, error) { return Do(ctx, c, cases[i].Req) }
		}
		for range n {
			s, err := measure(ctx)
			if err == nil {
				if record {
					res.Samples = append(res.Samples, s)
				}
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.Failures++
			if res.FirstErr == nil {
				res.FirstErr = err
			}
			if res.Failures > limit {
				return fmt.Errorf("%s: %d requests failed, the first with: %w", cases[i].Name, res.Failures, res.FirstErr)
			}
		}
		return nil
	}
	for i := range cases {
		if err := send(i, warmup, false); err != nil {
			return nil, err
		}
	}
	for round := range rounds {
		for k := range cases {
			if err := send((round+k)%len(cases), perRound, true); err != nil {
				return nil, err
			}
		}
		for i := range out {
			out[i].RoundEnds = append(out[i].RoundEnds, len(out[i].Samples))
		}
	}
	return out, nil
}
