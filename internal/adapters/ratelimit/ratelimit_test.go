package ratelimit_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/ports"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

func TestContract(t *testing.T) {
	contract.TestRateLimiter(t, func(*testing.T) ports.RateLimiter { return ratelimit.New() })
}
