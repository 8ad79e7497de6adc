package openai_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
)

// benchCompletion is the upstream's answer in the benchmarks: a chat
// completion of about 1.2 KB, like the bench harness's mock.
var benchCompletion = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-chat",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("The quick brown fox jumps over the lazy dog. ", 22) +
	`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":220,"total_tokens":244}}`)

// benchUpstream serves benchCompletion to every request after reading its
// body; sent receives the first request's body.
func benchUpstream(b *testing.B) (srv *httptest.Server, sent chan []byte) {
	sent = make(chan []byte, 1)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case sent <- body:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(benchCompletion)
	}))
	b.Cleanup(srv.Close)
	return srv, sent
}

// benchClientBody is the bench harness's chat call as its client sends it.
var benchClientBody = []byte(`{"model":"bench-chat","messages":[{"role":"system","content":"You are terse."},` +
	`{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":512}`)

// benchRequest is the bench harness's chat call as the gateway hands it to
// the adapter.
func benchRequest() domain.ChatRequest {
	return domain.ChatRequest{Model: "bench-chat", MaxTokens: 512, Messages: []domain.Message{
		{Role: domain.RoleSystem, Content: "You are terse."},
		{Role: domain.RoleUser, Content: "Say hello to the benchmark, please."},
	}}
}

// BenchmarkChat measures the adapter's Chat against a local upstream: one
// call, from the domain request to the domain response, the loopback round
// trip included. Its allocations are the adapter's and net/http's client's.
func BenchmarkChat(b *testing.B) {
	srv, _ := benchUpstream(b)
	p := newProvider(b, srv.URL, openai.Options{APIKey: apiKey})
	ctx, req := context.Background(), benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Chat(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNative measures the adapter's Native for a chat completions
// request passed through, against a local upstream: the client's body with
// the model set, the call, the answer's usage read and its model renamed.
// Its allocations are the adapter's and net/http's client's.
func BenchmarkNative(b *testing.B) {
	srv, _ := benchUpstream(b)
	p := newProvider(b, srv.URL, openai.Options{APIKey: apiKey})
	ctx := context.Background()
	req := domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: benchClientBody, Model: "bench-chat", Answer: "bench-chat", MaxTokens: 512}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Native(ctx, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddedVsReverseProxy compares what the adapter adds to an upstream
// call with what httputil.ReverseProxy adds to the same call. Each
// iteration makes, in turn:
//
//   - direct: the upstream call alone, an http.Client POSTing the bytes the
//     adapter sends (captured from its first call) and reading the answer;
//   - adapter: the adapter's Chat, from the domain request to the domain
//     response (encoding, the call, decoding, the usage);
//   - native: the adapter's Native, the pass-through tidygate takes for a
//     chat completions request to an OpenAI model: the client's body with
//     the model set, the call, the answer's usage read and its model
//     renamed;
//   - proxy: a ReverseProxy's ServeHTTP for the same request, held in
//     memory as a server hands it over, its answer copied to a
//     ResponseWriter that discards it.
//
// All three run in this process over one http.Client (the adapter's
// default, also the proxy's transport) to the same loopback upstream, so
// each pays the same round trip and neither side pays an inbound socket.
// It reports the medians: direct-µs, and adapter-added-µs, native-added-µs
// and proxy-added-µs (each median minus direct's), and the ratio
// adapter/proxy.
func BenchmarkAddedVsReverseProxy(b *testing.B) {
	srv, sent := benchUpstream(b)
	client := llm.NewHTTPClient()
	p := newProvider(b, srv.URL, openai.Options{APIKey: apiKey, HTTPClient: client})
	ctx, req := context.Background(), benchRequest()
	if _, err := p.Chat(ctx, req); err != nil {
		b.Fatal(err)
	}
	wire := <-sent
	target, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport: client.Transport,
	}
	direct := func() error {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(wire))
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	adapter := func() error { _, err := p.Chat(ctx, req); return err }
	nreq := domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: benchClientBody, Model: "bench-chat", Answer: "bench-chat", MaxTokens: 512}
	native := func() error { _, err := p.Native(ctx, nreq, nil); return err }
	proxied := func() error {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", bytes.NewReader(wire))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+apiKey)
		w := &discardWriter{header: http.Header{}}
		proxy.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			return fmt.Errorf("the proxy answered %d", w.status)
		}
		return nil
	}
	paths := []func() error{direct, adapter, native, proxied}
	times := make([][]time.Duration, len(paths))
	for b.Loop() {
		for i, call := range paths {
			start := time.Now()
			if err := call(); err != nil {
				b.Fatal(err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Microsecond)
	}
	d, a, n, x := med(times[0]), med(times[1]), med(times[2]), med(times[3])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(d, "direct-µs")
	b.ReportMetric(a-d, "adapter-added-µs")
	b.ReportMetric(n-d, "native-added-µs")
	b.ReportMetric(x-d, "proxy-added-µs")
	if x > d {
		b.ReportMetric((a-d)/(x-d), "adapter/proxy")
	}
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, as a client that reads the answer and does nothing with it.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
