package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one HTTP call the load generator repeats.
type Request struct {
	URL    string      // absolute, e.g. http://127.0.0.1:8080/v1/chat/completions
	Body   []byte      // sent with POST; nil sends a GET
	Header http.Header // added to every request
}

// Sample is one measured request.
type Sample struct {
	// TTFB is the time from sending the request until the first byte of the
	// response body arrived: for a stream, its first event.
	TTFB time.Duration
	// Total is the time from sending the request until the body was read to
	// its end.
	Total time.Duration
}

// NewClient returns the load generator's HTTP client: keep-alive with up to
// conns idle connections per host, no compression, no proxy from the
// environment, and a 30-second limit per request.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// StatusError is a response whose status was not 200.
type StatusError struct {
	Status int
	Body   string // the start of the response body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.Status, e.Body)
}

// Do sends req once and measures it. A status other than 200 is a
// *StatusError; the body is always read to its end, so the connection is
// reused.
func Do(ctx context.Context, c *http.Client, req Request) (Sample, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if req.Body != nil {
		method, body = http.MethodPost, bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return Sample{}, err
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	start := time.Now()
	resp, err := c.Do(hr)
	if err != nil {
		return Sample{}, err
	}
	defer resp.Body.Close()
	var first [1]byte
	n, err := io.ReadFull(resp.Body, first[:])
	s := Sample{TTFB: time.Since(start)}
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return Sample{}, err
	}
	var head []byte
	if resp.StatusCode != http.StatusOK {
		head, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return Sample{}, err
	}
	s.Total = time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return Sample{}, &StatusError{Status: resp.StatusCode, Body: string(first[:n]) + string(head)}
	}
	return s, nil
}

// Sequential sends n requests one after another (concurrency 1) and
// returns their samples; it stops at the first failure.
func Sequential(ctx context.Context, c *http.Client, req Request, n int) ([]Sample, error) {
	out := make([]Sample, 0, n)
	for range n {
		s, err := Do(ctx, c, req)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Throughput is the outcome of a closed-loop run at fixed concurrency.
type Throughput struct {
	Workers   int
	Elapsed   time.Duration
	Succeeded int
	Failed    int
	FirstErr  error   // the first failure, if any
	Latency   Summary // of the successful requests' total times
}

// PerSecond returns the successful requests per second.
func (t Throughput) PerSecond() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Succeeded) / t.Elapsed.Seconds()
}

// Warm sends req from workers goroutines back to back for d, as
// ClosedLoop does, but lets the requests in flight when d ends finish
// instead of cutting them off, so that the target holds none of them when
// the measured run after it begins. A request cut off on the client's
// side still runs in the target until it notices, and takes one of its
// places meanwhile (a key's share of concurrent calls, in tidygate),
// which the run's first requests would then find taken. It returns how
// many requests succeeded.
func Warm(ctx context.Context, c *http.Client, req Request, workers int, d time.Duration) int {
	end := time.Now().Add(d)
	var succeeded atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if _, err := Do(ctx, c, req); err == nil {
					succeeded.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(succeeded.Load())
}

// ClosedLoop runs workers goroutines that each send req back to back for d:
// the offered load adapts to the target, so the rate measured is what the
// target sustains at that concurrency. Failures are counted, not fatal.
func ClosedLoop(ctx context.Context, c *http.Client, req Request, workers int, d time.Duration) Throughput {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		res   = Throughput{Workers: workers}
		total []time.Duration
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			failed := 0
			var firstErr error
			for ctx.Err() == nil {
				s, err := Do(ctx, c, req)
				switch {
				case err == nil:
					mine = append(mine, s.Total)
				case ctx.Err() == nil: // a request cut by the end of the run is not a failure
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total = append(total, mine...)
			res.Failed += failed
			if res.FirstErr == nil {
				res.FirstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Succeeded = len(total)
	res.Latency = Summarize(total)
	return res
}

// Summary describes a latency distribution by sorted-sample percentiles.
type Summary struct {
	N                             int
	Min, P50, P90, P99, P999, Max time.Duration
	Mean                          time.Duration
}

// Summarize sorts a copy of d and reads its percentiles.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	var sum time.Duration
	for _, v := range sorted {
		sum += v
	}
	return Summary{
		N: len(sorted), Min: sorted[0], Max: sorted[len(sorted)-1],
		P50: Percentile(sorted, 50), P90: Percentile(sorted, 90),
		P99: Percentile(sorted, 99), P999: Percentile(sorted, 99.9),
		Mean: sum / time.Duration(len(sorted)),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, which must be in ascending order: the smallest sample that at
// least p % of the samples do not exceed. It returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9)) // the epsilon absorbs float error in p
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Totals returns the total times of samples.
func Totals(samples []Sample) []time.Duration {
	out := make([]time.Duration, len(samples))
	for i, s := range samples {
		out[i] = s.Total
	}
	return out
}

// TTFBs returns the times to first byte of samples.
func TTFBs(samples []Sample) []time.Duration {
	out := make([]time.Duration, len(samples))
	for i, s := range samples {
		out[i] = s.TTFB
	}
	return out
}
