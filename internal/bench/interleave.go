package bench

import (
	"context"
	"fmt"
	"net/http"
)

// Case is one thing the interleaved runner measures: a named request.
type Case struct {
	Name string
	Req  Request
}

// Interleave measures cases at concurrency 1 in rounds: each round sends
// perRound requests to every case in turn, starting one case later than
// the round before, so that drift on the machine (other processes, CPU
// frequency, the garbage collector of a long run) falls on every case
// alike. Each case first gets warmup requests that are not recorded. It
// returns the samples of each case in the order of cases.
func Interleave(ctx context.Context, c *http.Client, cases []Case, rounds, perRound, warmup int) ([][]Sample, error) {
	for _, cs := range cases {
		if _, err := Sequential(ctx, c, cs.Req, warmup); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", cs.Name, err)
		}
	}
	out := make([][]Sample, len(cases))
	for round := range rounds {
		for k := range cases {
			i := (round + k) % len(cases)
			samples, err := Sequential(ctx, c, cases[i].Req, perRound)
			if err != nil {
				return nil, fmt.Errorf("%s: round %d: %w", cases[i].Name, round+1, err)
			}
			out[i] = append(out[i], samples...)
		}
	}
	return out, nil
}
