// Package bench holds the reusable parts of tidygate's benchmark harness
// (cmd/bench): a fast OpenAI-compatible mock upstream, a load generator that
// measures every request (total time and time to the first body byte), an
// interleaved runner for comparing targets at concurrency 1, sorted-sample
// percentiles, an SVG chart of latency distributions, and PostgreSQL pool
// benchmarks in the form testing.Benchmark runs.
//
// Nothing here knows about tidygate: the mock serves any OpenAI client and
// the load generator drives any HTTP endpoint, so the same tools measure a
// plain reverse proxy, tidygate, or another gateway against one mock.
package bench
