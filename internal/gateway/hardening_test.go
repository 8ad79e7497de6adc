package gateway_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// TestBackoffIsNotTidygatesOwnTime: the pauses between attempts are waiting
// on a failing provider, so the result reports them apart from tidygate's
// own time (the HTTP edge leaves them out of X-Tidygate-Overhead-Ms).
func TestBackoffIsNotTidygatesOwnTime(t *testing.T) {
	r := newRig(t, gateway.Options{MaxAttempts: 3, RetryBackoff: 20 * time.Millisecond}, alice, 0)
	r.primary.errs = []error{errUpstream, errUpstream}
	res, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
	if err != nil {
		t.Fatal(err)
	}
	// Two pauses: 20ms, then 40ms. A timer never fires early.
	if res.Backoff < 60*time.Millisecond {
		t.Fatalf("Backoff = %s, want at least the two pauses (60ms)", res.Backoff)
	}
	if res.Waiting() != res.ProviderTime+res.Backoff {
		t.Fatalf("Waiting = %s, want provider time %s + backoff %s", res.Waiting(), res.ProviderTime, res.Backoff)
	}
}

// TestEmbeddingsAreBounded refuses, before any provider is asked, an
// embeddings request over any of the bounds: the mock's 65536 dimensions ×
// 256 inputs (a 1 KB body) once made a 223 MB response.
func TestEmbeddingsAreBounded(t *testing.T) {
	limits := domain.EmbedLimits{MaxDimensions: 4096, MaxInputs: 100, MaxInputBytes: 1000, MaxResponseValues: 100_000}
	many := func(n int, s string) []string {
		in := make([]string, n)
		for i := range in {
			in[i] = s
		}
		return in
	}
	for _, tc := range []struct {
		name  string
		req   domain.EmbedRequest
		param string
	}{
		{"dimensions", domain.EmbedRequest{Model: "vec", Inputs: many(1, "a"), Dimensions: 65536}, "dimensions"},
		{"input count", domain.EmbedRequest{Model: "vec", Inputs: many(101, "a")}, "input"},
		{"input size", domain.EmbedRequest{Model: "vec", Inputs: many(2, strings.Repeat("a", 501))}, "input"},
		{"response size", domain.EmbedRequest{Model: "vec", Inputs: many(100, "a"), Dimensions: 1001}, "dimensions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, gateway.Options{EmbedLimits: limits}, alice, 0)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := r.svc.Embed(context.Background(), r.call(), tc.req)
			runtime.ReadMemStats(&after)
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != tc.param {
				t.Fatalf("err = %v, want invalid %s", err, tc.param)
			}
			if r.primary.embeds != 0 {
				t.Fatal("the provider was asked")
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("refusing allocated %d bytes", grew)
			}
		})
	}
	r := newRig(t, gateway.Options{EmbedLimits: limits}, alice, 0)
	if _, err := r.svc.Embed(context.Background(), r.call(), domain.EmbedRequest{Model: "vec", Inputs: many(100, "a"), Dimensions: 1000}); err != nil {
		t.Fatalf("a request at every bound: %v", err)
	}
}

// TestEmbedLimitsDefaults bounds every request even when no limit is set.
func TestEmbedLimitsDefaults(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	in := make([]string, 256)
	for i := range in {
		in[i] = "x"
	}
	_, err := r.svc.Embed(context.Background(), r.call(), domain.EmbedRequest{Model: "vec", Inputs: in, Dimensions: 65536})
	if domain.KindOf(err) != domain.KindInvalid || r.primary.embeds != 0 {
		t.Fatalf("65536 dimensions × 256 inputs: err = %v after %d provider calls", err, r.primary.embeds)
	}
}
