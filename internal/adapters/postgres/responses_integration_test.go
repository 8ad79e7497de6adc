//go:build integration

package postgres_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/ports"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

func TestResponseStoreContract(t *testing.T) {
	contract.TestResponseStore(t, func(t *testing.T) ports.ResponseStore {
		pool, _ := migrated(t)
		return postgres.NewResponseStore(pool)
	})
}
