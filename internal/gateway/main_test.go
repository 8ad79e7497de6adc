package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a call
// abandoned mid-retry, a blocked provider or a stream must not leak one.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
