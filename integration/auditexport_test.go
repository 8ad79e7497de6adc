//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestAdminChangesBecomeMLflowTracesExactlyOnce makes admin changes through
// the administration service and exports the audit log to MLflow's tables
// in the same database: exactly one trace per audit entry in the admin
// experiment, with the actor, the reason and the states before and after,
// and no secret — also when MLflow's database is down for a while, when an
// exporter dies between writing the traces and recording the export, and
// when two exporters run at once.
func TestAdminChangesBecomeMLflowTracesExactlyOnce(t *testing.T) {
	ctx := context.Background()
	pool, keys := migratedKeyStore(t)
	svc := admin.NewService(keys, admin.Options{})
	actor := domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_flow", Scopes: []domain.AdminScope{domain.AdminWrite}}
	var secrets []string
	var writes int
	write := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		writes++
	}

	// Changes of every kind: keys created, revoked and rotated, limits set
	// twice, an admin key created.
	key, secret, err := svc.CreateKey(ctx, actor, "onboarding alice", domain.NewKey{User: "alice", Team: "risk", RPM: 60})
	write(err)
	secrets = append(secrets, secret)
	_, secret, err = svc.RotateKey(ctx, actor, "quarterly rotation", key.ID, time.Hour, "")
	write(err)
	secrets = append(secrets, secret)
	_, err = svc.RevokeKey(ctx, actor, "alice left the team", key.ID, "")
	write(err)
	_, err = svc.SetLimits(ctx, actor, "risk team's quota", domain.LimitTeam, "risk", domain.Limits{RPM: 600, MaxConcurrent: 4})
	write(err)
	_, err = svc.SetLimits(ctx, actor, "tokens instead", domain.LimitTeam, "risk", domain.Limits{TPM: 5000})
	write(err)
	_, secret, err = svc.CreateAdminKey(ctx, actor, "automation", "ci", []domain.AdminScope{domain.AdminRead})
	write(err)
	secrets = append(secrets, secret)

	// The first exporters create MLflow's tables; the later ones, like
	// tidygate's, only verify them (DDL beside another's writes could
	// deadlock).
	opts := mlflow.Options{Schema: mlflow.SchemaCreate, ExperimentPrefix: "tidygate/"}
	exporter := func(conns mlflow.Conns, outbox mlflow.AuditOutbox) *mlflow.AuditExporter {
		t.Helper()
		x, err := mlflow.NewAuditExporter(conns, outbox, opts)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	traces := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM trace_info t JOIN experiments e ON e.experiment_id = t.experiment_id
			WHERE e.name = 'tidygate/admin'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exported := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM tidygate_audit_exports").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// MLflow's database down: nothing is written, nothing is marked.
	down := &switchedConns{pool: pool}
	down.down.Store(true)
	if err := exporter(down, keys).Drain(ctx); err == nil {
		t.Fatal("the export succeeded with MLflow's database down")
	}
	if exported() != 0 {
		t.Fatalf("%d entries marked exported while MLflow's database was down", exported())
	}

	// The exporter dies after MLflow committed and before the export was
	// recorded: the next exporter writes the same traces again, which
	// changes nothing.
	if err := exporter(pool, dyingOutbox{keys}).Drain(ctx); err == nil {
		t.Fatal("the dying export reported success")
	}
	if n := traces(); n != writes || exported() != 0 {
		t.Fatalf("after the dying export: %d traces, %d marked; want %d and 0", n, exported(), writes)
	}
	down.down.Store(false) // and the first exporter's database is back
	if err := exporter(down, keys).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := traces(); n != writes || exported() != writes {
		t.Fatalf("after the restart: %d traces, %d marked; want %d of each", n, exported(), writes)
	}

	// The traces hold the change.
	entries, err := keys.Audit(ctx, domain.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != writes {
		t.Fatalf("%d audit entries after %d writes", len(entries), writes)
	}
	for _, e := range entries {
		if e.TraceKey == "" || e.TraceID != domain.AuditTraceID(e) {
			t.Errorf("audit entry %d (%s, key %q) lists trace %q; want %s", e.ID, e.Action, e.TraceKey, e.TraceID, domain.AuditTraceID(e))
		}
		meta := traceMetadata(t, pool, e.TraceID)
		if meta["tidygate.actor"] != "admin_key:adm_flow" || meta["tidygate.audit_reason"] != e.Reason ||
			meta["tidygate.action"] != e.Action || meta["tidygate.target"] != e.Target {
			t.Errorf("trace of %s: metadata %v", e.Action, meta)
		}
	}
	var limits []map[string]any
	rows, err := pool.Query(ctx, `SELECT s.content FROM spans s JOIN trace_request_metadata m ON m.request_id = s.trace_id
		WHERE m.key = 'tidygate.action' AND m.value = 'limits.set' ORDER BY s.start_time_unix_nano, s.trace_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var content string
		if err := rows.Scan(&content); err != nil {
			t.Fatal(err)
		}
		var span struct{ Attributes map[string]string }
		var in map[string]any
		if err := json.Unmarshal([]byte(content), &span); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(span.Attributes["mlflow.spanInputs"]), &in); err != nil {
			t.Fatal(err)
		}
		limits = append(limits, in)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(limits)
	for _, want := range []string{"after:map[id:risk kind:limits max_concurrent:4 rpm:600 scope:team tpm:0]",
		"before:map[id:risk kind:limits max_concurrent:4 rpm:600 scope:team tpm:0]", "after:map[id:risk kind:limits max_concurrent:0 rpm:0 scope:team tpm:5000]"} {
		if !strings.Contains(got, want) {
			t.Errorf("the limits traces' inputs %s lack %s", got, want)
		}
	}

	opts.Schema = mlflow.SchemaVerify
	// Two exporters at once, each export slowed so that they overlap:
	// each entry is written by exactly one of them.
	for i := range 250 {
		_, err := svc.SetLimits(ctx, actor, "burst", domain.LimitUser, fmt.Sprintf("u%d", i%7), domain.Limits{RPM: i + 1})
		write(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 2 {
		x := exporter(pool, countingOutbox{keys, &mu, seen})
		wg.Go(func() {
			if err := x.Drain(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if len(seen) != 250 || twice > 0 {
		t.Errorf("the two exporters wrote %d entries, %d of them more than once; want 250, each once", len(seen), twice)
	}
	if n := traces(); n != writes || exported() != writes {
		t.Errorf("after the concurrent exports: %d traces, %d marked; want %d of each", n, exported(), writes)
	}

	dump := dumpTables(t, pool.Config().ConnString(), "trace_info", "trace_tags", "trace_request_metadata", "spans", "experiments", "experiment_tags")
	for _, s := range secrets {
		if strings.Contains(dump, s) || strings.Contains(dump, domain.HashKey(s)) {
			t.Errorf("a secret (or its hash) reached the MLflow tables")
		}
	}
}

// switchedConns is MLflow's database, unreachable while down is set.
type switchedConns struct {
	pool *pgxpool.Pool
	down atomic.Bool
}

func (c *switchedConns) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if c.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	}
	return c.pool.Acquire(ctx)
}

// dyingOutbox writes the traces and then fails, as an exporter killed
// between MLflow's commit and its own would.
type dyingOutbox struct{ mlflow.AuditOutbox }

func (o dyingOutbox) ExportAudit(ctx context.Context, limit int, export func(context.Context, []domain.AuditEntry) error) (int, error) {
	return o.AuditOutbox.ExportAudit(ctx, limit, func(ctx context.Context, entries []domain.AuditEntry) error {
		if err := export(ctx, entries); err != nil {
			return err
		}
		return errors.New("killed after MLflow's commit")
	})
}

// countingOutbox counts the entries each successful export wrote, and
// slows each export so that exporters running at once overlap.
type countingOutbox struct {
	mlflow.AuditOutbox
	mu   *sync.Mutex
	seen map[int64]int
}

func (o countingOutbox) ExportAudit(ctx context.Context, limit int, export func(context.Context, []domain.AuditEntry) error) (int, error) {
	return o.AuditOutbox.ExportAudit(ctx, limit, func(ctx context.Context, entries []domain.AuditEntry) error {
		time.Sleep(200 * time.Millisecond)
		if err := export(ctx, entries); err != nil {
			return err
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, e := range entries {
			o.seen[e.ID]++
		}
		return nil
	})
}

// traceMetadata returns a trace's metadata.
func traceMetadata(t *testing.T, pool *pgxpool.Pool, traceID string) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT key, value FROM trace_request_metadata WHERE request_id = $1", traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	meta := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		meta[k] = v
	}
	return meta
}

// TestInstallationsSharingAnMLflowDatabaseKeepTheirAuditTrails: two
// installations, each with its own database whose audit log counts from 1,
// export to one MLflow database: each change becomes a trace of its own,
// holding that installation's actor and reason, and each entry lists its
// own trace. (With traces derived from the entry's ID alone, the second
// export found "its" trace written already and recorded the first
// installation's trace as its own.)
func TestInstallationsSharingAnMLflowDatabaseKeepTheirAuditTrails(t *testing.T) {
	ctx := context.Background()
	mlflowDB, err := pgxpool.New(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mlflowDB.Close()
	opts := mlflow.Options{Schema: mlflow.SchemaCreate, ExperimentPrefix: "tidygate/"}
	var traceIDs []string
	for _, team := range []string{"staging", "production"} {
		_, keys := migratedKeyStore(t)
		actor := domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_" + team, Scopes: []domain.AdminScope{domain.AdminWrite}}
		if _, _, err := admin.NewService(keys, admin.Options{}).CreateKey(ctx, actor, "onboarding "+team, domain.NewKey{User: "ann", Team: team}); err != nil {
			t.Fatal(err)
		}
		x, err := mlflow.NewAuditExporter(mlflowDB, keys, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		entries, err := keys.Audit(ctx, domain.AuditQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].ID != 1 || entries[0].TraceID == "" {
			t.Fatalf("%s's audit log: %+v; want entry 1, exported", team, entries)
		}
		meta := traceMetadata(t, mlflowDB, entries[0].TraceID)
		if meta["tidygate.actor"] != "admin_key:adm_"+team || meta["tidygate.audit_reason"] != "onboarding "+team {
			t.Errorf("%s's entry 1 lists trace %s, whose metadata is %v", team, entries[0].TraceID, meta)
		}
		traceIDs = append(traceIDs, entries[0].TraceID)
	}
	var n int
	if err := mlflowDB.QueryRow(ctx, `SELECT count(*) FROM trace_info t JOIN experiments e ON e.experiment_id = t.experiment_id
		WHERE e.name = 'tidygate/admin'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 || traceIDs[0] == traceIDs[1] {
		t.Errorf("%d traces in tidygate/admin, entries list %v; want two traces, one for each installation's entry", n, traceIDs)
	}
}

// migratedKeyStore returns a pool on a new database with tidygate's schema,
// closed when the test ends, and the key store on it.
func migratedKeyStore(t *testing.T) (*pgxpool.Pool, *postgres.KeyStore) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool, postgres.NewKeyStore(pool)
}

// TestAnAuditEntryMLflowRefusesDoesNotHoldBackTheOthers: MLflow's database
// refuses one entry's trace for its data (here a check constraint the test
// adds, standing for any constraint or limit of MLflow's schema): the
// entries before and after it are exported, it is recorded as refused with
// PostgreSQL's reason and never claimed again, and it stays in the audit
// log.
func TestAnAuditEntryMLflowRefusesDoesNotHoldBackTheOthers(t *testing.T) {
	ctx := context.Background()
	pool, keys := migratedKeyStore(t)
	svc := admin.NewService(keys, admin.Options{})
	actor := domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_poison", Scopes: []domain.AdminScope{domain.AdminWrite}}
	for _, reason := range []string{"first change", "the poisoned change", "third change"} {
		if _, err := svc.SetLimits(ctx, actor, reason, domain.LimitTeam, "risk", domain.Limits{RPM: len(reason)}); err != nil {
			t.Fatal(err)
		}
	}
	opts := mlflow.Options{Schema: mlflow.SchemaCreate, ExperimentPrefix: "tidygate/"}
	x, err := mlflow.NewAuditExporter(pool, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Export(ctx); err != nil { // creates MLflow's tables and exports all three
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM tidygate_audit_exports; DELETE FROM trace_request_metadata; DELETE FROM trace_tags;
		DELETE FROM spans; DELETE FROM trace_info;
		ALTER TABLE trace_request_metadata ADD CONSTRAINT no_poison CHECK (value NOT LIKE '%poisoned%')`); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the refusal is found and recorded at once; later exports find nothing
		if err := x.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := keys.Audit(ctx, domain.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want 3", len(entries))
	}
	for _, e := range entries {
		poisoned := e.Reason == "the poisoned change"
		switch {
		case poisoned && (e.TraceID != "" || !strings.Contains(e.ExportRefused, "no_poison")):
			t.Errorf("the refused entry: trace %q, refusal %q; want no trace and PostgreSQL's reason naming the constraint", e.TraceID, e.ExportRefused)
		case !poisoned && (e.TraceID == "" || e.ExportRefused != ""):
			t.Errorf("entry %q: trace %q, refusal %q; want exported", e.Reason, e.TraceID, e.ExportRefused)
		case !poisoned && traceMetadata(t, pool, e.TraceID)["tidygate.audit_reason"] != e.Reason:
			t.Errorf("entry %q's trace %s does not hold it", e.Reason, e.TraceID)
		}
	}
}
