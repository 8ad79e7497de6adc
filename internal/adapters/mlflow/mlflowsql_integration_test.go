//go:build integration

package mlflow

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
)

// The SQL that MLflow's tracking store (SqlAlchemyStore) issues for the
// questions an operator asks of tidygate's calls, pinned here as fixtures:
// MLflow itself cannot run in these tests, so they run MLflow's queries
// against the rows tidygate wrote.
const (
	// experimentListSQL is the MLflow UI's experiment list:
	// search_experiments(max_results=25, order_by=["last_update_time DESC"],
	// filter_string="tags.`mlflow.experiment.isGateway` IS NULL"). The
	// filter hides MLflow's own gateway experiments, and would hide any
	// experiment carrying the tag.
	experimentListSQL = `SELECT experiments.experiment_id, experiments.name FROM experiments
		WHERE experiments.lifecycle_stage IN ('active') %s
		AND NOT (EXISTS (SELECT 1 FROM experiment_tags
			WHERE experiment_tags.key = 'mlflow.experiment.isGateway'
			AND experiment_tags.experiment_id = experiments.experiment_id))
		ORDER BY experiments.last_update_time DESC, experiments.experiment_id ASC LIMIT 26`

	// searchByClientRequestIDSQL is search_traces(locations=[experiment],
	// filter_string="trace.client_request_id = '<id>'").
	searchByClientRequestIDSQL = `SELECT trace_info.request_id FROM trace_info
		WHERE trace_info.experiment_id IN ($1) AND trace_info.client_request_id = $2
		ORDER BY trace_info.timestamp_ms DESC, trace_info.request_id ASC`

	// searchByMetadataSQL is search_traces(filter_string=
	// "metadata.`<key>` = '<value>'"), how an operator finds a call by a
	// client request id longer than client_request_id holds.
	searchByMetadataSQL = `SELECT trace_info.request_id FROM trace_info
		WHERE trace_info.experiment_id IN ($1) AND EXISTS (SELECT 1 FROM trace_request_metadata
			WHERE trace_request_metadata.request_id = trace_info.request_id
			AND trace_request_metadata.key = $2 AND trace_request_metadata.value = $3)`

	// refusalsSQL is search_traces(locations=[experiment], filter_string=
	// "trace.status = 'ERROR' AND tags.`tidygate.outcome` = 'rejected'"):
	// the calls tidygate refused for a model.
	refusalsSQL = `SELECT trace_info.request_id FROM trace_info
		WHERE trace_info.experiment_id IN ($1) AND trace_info.status = 'ERROR'
		AND EXISTS (SELECT 1 FROM trace_tags WHERE trace_tags.request_id = trace_info.request_id
			AND trace_tags.key = 'tidygate.outcome' AND trace_tags.value = 'rejected')
		ORDER BY trace_info.timestamp_ms DESC, trace_info.request_id ASC`

	// gatewayCostSQL is sum_gateway_trace_cost(start_time_ms, end_time_ms)
	// for a GLOBAL budget policy of MLflow's AI gateway: the cost of every
	// trace that carries mlflow.gateway.endpointId, whatever its value.
	gatewayCostSQL = `SELECT coalesce(sum(span_metrics.value), 0) AS total FROM span_metrics
		JOIN trace_info ON trace_info.request_id = span_metrics.trace_id
		JOIN trace_request_metadata ON trace_request_metadata.request_id = trace_info.request_id
		WHERE span_metrics.key = 'total_cost' AND trace_request_metadata.key = 'mlflow.gateway.endpointId'
		AND trace_info.timestamp_ms >= $1 AND trace_info.timestamp_ms < $2`
)

// mlflowVersion is an MLflow schema tidygate supports, derived from MLflow's
// own dump (the newest) by dropping what later versions added.
type mlflowVersion struct {
	name      string
	downgrade string // SQL run on the loaded dump
	workspace bool   // experiments has the workspace column
}

// supportedVersions are the schemas from the first with the spans table
// (MLflow 3.3.0) to the dump's head.
func supportedVersions() []mlflowVersion {
	// The gateway, workspace and later tables tidygate never writes go too,
	// so that nothing but MLflow's older tables is left for tidygate to use.
	gateway := `DROP TABLE IF EXISTS guardrail_configs, guardrails, endpoint_bindings, endpoint_model_mappings, endpoint_tags,
		endpoints, model_definitions, secrets, budget_policies, online_scoring_configs, issues, workspaces CASCADE;`
	withoutWorkspace := `ALTER TABLE experiments DROP COLUMN workspace;
		ALTER TABLE experiments ADD CONSTRAINT experiments_name_key UNIQUE (name);`
	return []mlflowVersion{
		{name: "3.3 (spans)", workspace: false, downgrade: gateway + withoutWorkspace +
			`DROP TABLE span_metrics; DROP TABLE trace_metrics; ALTER TABLE spans DROP COLUMN dimension_attributes;`},
		{name: "3.9 (trace_metrics)", workspace: false, downgrade: gateway + withoutWorkspace +
			`DROP TABLE span_metrics; ALTER TABLE spans DROP COLUMN dimension_attributes;`},
		{name: "3.10 (span_metrics)", workspace: false, downgrade: gateway + withoutWorkspace},
		{name: "head 7d34483879f0 (3.11, 3.12)", workspace: true},
	}
}

// tableExists reports whether the test database has the table.
func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func queryStrings(t *testing.T, pool *pgxpool.Pool, query string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		vals, err := row.Values()
		if err != nil {
			return "", err
		}
		return fmt.Sprint(vals[len(vals)-1]), nil
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// TestMLflowFindsTidygatesCalls writes every kind of call into each
// supported MLflow schema and asks MLflow's own queries for them: the
// experiment list shows tidygate's experiments, the search by client
// request id (or, for a longer id, by metadata) finds the call, and MLflow's
// gateway budgets count none of tidygate's spend unless the operator asks.
func TestMLflowFindsTidygatesCalls(t *testing.T) {
	for _, v := range supportedVersions() {
		t.Run(v.name, func(t *testing.T) {
			ctx := context.Background()
			pool := newPool(t)
			loadMLflowSchema(t, pool)
			if v.downgrade != "" {
				if _, err := pool.Exec(ctx, v.downgrade); err != nil {
					t.Fatalf("deriving the %s schema: %v", v.name, err)
				}
			}
			opts := testOptions(t)
			opts.Schema = SchemaVerify
			c := openLog(t, pool, opts)
			recs := mixed("v", 10)
			long := sample("long-client-id", okChat, 11)
			long.ClientRequestID = strings.Repeat("c", 80)
			recs = append(recs, long)
			recordAll(t, c, recs)
			flush(t, c)
			checkTraces(t, pool, recs)

			workspace := ""
			if v.workspace {
				workspace = "AND experiments.workspace = 'default'"
			}
			listed := queryStrings(t, pool, fmt.Sprintf(experimentListSQL, workspace))
			for _, want := range []string{"tidygate/mock-chat", "tidygate/mock-embed"} {
				if !strings.Contains(strings.Join(listed, ","), want) {
					t.Errorf("MLflow's experiment list shows %v, not %s", listed, want)
				}
			}

			for _, r := range recs {
				var exp int64
				if err := pool.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = $1", "tidygate/"+modelOf(r)).Scan(&exp); err != nil {
					t.Fatal(err)
				}
				want := newTraceIDs(r.RequestID).traceID()
				var found []string
				if len(r.ClientRequestID) <= 50 {
					found = queryStrings(t, pool, searchByClientRequestIDSQL, exp, r.ClientRequestID)
				} else {
					found = queryStrings(t, pool, searchByMetadataSQL, exp, "tidygate.client_request_id", r.ClientRequestID)
				}
				if len(found) != 1 || found[0] != want {
					t.Errorf("MLflow's search for client request id %.20q… finds %v, want %s", r.ClientRequestID, found, want)
				}
			}

			// Refusals are filed under the model they were refused for.
			var chatExp int64
			if err := pool.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = 'tidygate/mock-chat'").Scan(&chatExp); err != nil {
				t.Fatal(err)
			}
			var wantRefused []string
			for _, r := range recs {
				if r.Outcome == domain.OutcomeRejected && r.Model == "mock-chat" {
					wantRefused = append(wantRefused, newTraceIDs(r.RequestID).traceID())
				}
			}
			if got := queryStrings(t, pool, refusalsSQL, chatExp); len(wantRefused) == 0 || len(got) != len(wantRefused) {
				t.Errorf("MLflow's search for refusals in tidygate/mock-chat finds %v, want %v", got, wantRefused)
			}

			if !tableExists(t, pool, "span_metrics") {
				return // no MLflow gateway budgets before span metrics
			}
			var spend float64
			if err := pool.QueryRow(ctx, gatewayCostSQL, int64(0), int64(1)<<62).Scan(&spend); err != nil {
				t.Fatal(err)
			}
			if spend != 0 {
				t.Errorf("MLflow's gateway budgets count %v USD of tidygate's spend without MLFLOW_GATEWAY_ENDPOINT_ID", spend)
			}
		})
	}
}

// TestGatewayBudgetsCountTidygateOnlyWhenAsked sets the opt-in and finds
// tidygate's whole spend in MLflow's gateway budget query.
func TestGatewayBudgetsCountTidygateOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	loadMLflowSchema(t, pool)
	opts := testOptions(t)
	opts.Schema, opts.GatewayEndpointID = SchemaVerify, "tidygate"
	c := openLog(t, pool, opts)
	recs := mixed("budget", 15)
	recordAll(t, c, recs)
	flush(t, c)
	var want domain.Micros
	for _, r := range recs {
		want += r.Cost()
	}
	var spend float64
	if err := pool.QueryRow(ctx, gatewayCostSQL, int64(0), int64(1)<<62).Scan(&spend); err != nil {
		t.Fatal(err)
	}
	if want == 0 || fmt.Sprintf("%.6f", spend) != fmt.Sprintf("%.6f", want.USD()) {
		t.Errorf("MLflow's gateway budget sums %v USD, want tidygate's %v", spend, want.USD())
	}
}
