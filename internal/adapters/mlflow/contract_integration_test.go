//go:build integration

package mlflow

import (
	"context"
	"testing"

	"github.com/tidygate/tidygate/internal/ports/contract"
)

// TestCallLogContract runs the call log's contract suite against the real
// call log: a record is delivered when its trace is in MLflow's tables.
func TestCallLogContract(t *testing.T) {
	contract.TestCallLog(t, func(t *testing.T) contract.CallLogUnderTest {
		pool := newPool(t)
		c := openLog(t, pool, testOptions(t))
		return contract.CallLogUnderTest{Log: c, Delivered: func(ctx context.Context) ([]string, error) {
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
	})
}
