//go:build integration

package mlflow

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/ports/contract"
)

// TestCallLogContract runs the call log's contract suite against the real
// call log: a record is delivered when its trace is in MLflow's tables.
func TestCallLogContract(t *testing.T) {
	contract.TestCallLog(t, func(t *testing.T) contract.CallLogUnderTest {
		pool := newPool(t)
		return underTest(t, pool, testOptions(t))
	})
}

// underTest opens the call log on pool with opts, as the contract suite
// sees it: a record is delivered when its trace is in MLflow's tables.
func underTest(t *testing.T, pool *pgxpool.Pool, opts Options) contract.CallLogUnderTest {
	c := openLog(t, pool, opts)
	return contract.CallLogUnderTest{Log: c,
		Reopen: func(t *testing.T) contract.CallLogUnderTest {
			closeNow(t, c)
			return underTest(t, pool, opts)
		},
		Delivered: func(ctx context.Context) ([]string, error) {
			if err := c.Flush(ctx); err != nil {
				return nil, err
			}
			rows, err := pool.Query(ctx, `SELECT value FROM trace_request_metadata WHERE key = 'tidygate.request_id'`)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			return ids, rows.Err()
		}}
}
