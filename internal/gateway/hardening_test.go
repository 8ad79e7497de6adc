package gateway_test

import (
	"context"
	"testing"
	"time"

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
