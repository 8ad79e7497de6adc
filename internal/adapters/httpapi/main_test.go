package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind, such as
// a stream whose client went away.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
