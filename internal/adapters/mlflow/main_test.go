//go:build !integration

package mlflow

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a
// closed call log must have stopped its writer. (The integration build has
// its own TestMain, which also stops the test database container.)
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
