package admin_test

import (
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/admin"
)

// TestThrottle checks the failed-authentication window on a fake clock: the
// limit blocks the address until its window ends, other addresses are not
// affected, and a new window starts clean.
func TestThrottle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := admin.NewThrottle(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if w := th.Blocked("10.0.0.1"); w != 0 {
			t.Fatalf("blocked after %d failures (limit 3)", i)
		}
		th.Fail("10.0.0.1")
	}
	now = now.Add(20 * time.Second)
	if w := th.Blocked("10.0.0.1"); w != 40*time.Second {
		t.Errorf("after 3 failures: wait %v, want 40s (the rest of the window)", w)
	}
	if w := th.Blocked("10.0.0.2"); w != 0 {
		t.Errorf("another address waits %v", w)
	}
	now = now.Add(40 * time.Second)
	if w := th.Blocked("10.0.0.1"); w != 0 {
		t.Errorf("after the window: wait %v, want 0", w)
	}
	th.Fail("10.0.0.1")
	if w := th.Blocked("10.0.0.1"); w != 0 {
		t.Errorf("one failure in a new window: wait %v, want 0", w)
	}
}
