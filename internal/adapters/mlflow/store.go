package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/pgkit"
)

// artifactRoot is the default artifact root of `mlflow server` with artifact
// serving; an experiment tidygate creates keeps its artifacts under
// artifactRoot/<experiment id>, as MLflow's own experiments do.
const artifactRoot = "mlflow-artifacts:/"

// store writes calls into the MLflow database. It is used by Open and then
// only by the writer goroutine, so it needs no locking.
type store struct {
	conns       Conns
	opts        Options
	log         *slog.Logger
	schema      *schema               // nil until verified, and again after a failed write
	created     bool                  // SchemaCreate has created the tables in this process
	experiments map[string]experiment // by model; cleared after a failed write
}

func newStore(conns Conns, opts Options, log *slog.Logger) *store {
	return &store{conns: conns, opts: opts, log: log, experiments: map[string]experiment{}}
}

// prepare creates the tables (with SchemaCreate, once per process) and
// verifies the schema, remembering which optional columns exist.
func (s *store) prepare(ctx context.Context) error {
	conn, err := s.conns.Acquire(ctx)
	if err != nil {
		return classify(err, "connect to the MLflow database")
	}
	defer conn.Release()
	if s.opts.Schema == SchemaCreate && !s.created {
		alembic, err := createSchema(ctx, conn.Conn())
		if err != nil {
			return s.classify(err, "prepare the MLflow schema")
		}
		s.created = true
		s.log.Warn("MLFLOW_SCHEMA=create: created the MLflow tables tidygate writes where missing; this database is not managed by MLflow, so use it for development only (production: MLFLOW_SCHEMA=verify after `mlflow db upgrade`)",
			"alembic_version_created", alembic)
	}
	sch, err := verifySchema(ctx, conn.Conn(), s.opts.LogMode)
	if err != nil {
		return s.classify(err, "verify the MLflow schema")
	}
	if sch.revision == "" {
		s.log.Warn("the MLflow database has no alembic_version; `mlflow server` will refuse to start on it")
	}
	s.log.Info("MLflow schema verified", "alembic_revision", sch.revision, "optional_columns", sch.optionalColumns())
	s.schema = sch
	return nil
}

// reset forgets the schema and the experiments after a failed write, so that
// the next attempt sees a schema MLflow upgraded and an experiment deleted
// meanwhile.
func (s *store) reset() {
	s.schema = nil
	clear(s.experiments)
}

// write writes the calls' rows in one transaction, or changes nothing.
//
// It first COPYs the rows of the tables that only ever gain rows, which is
// what PostgreSQL writes fastest, and inserts the others (latest_metrics
// keeps the greatest value). A COPY fails on a row whose primary key
// exists: the calls were written before, by a writer that died before it
// could remove them from the journal. Then write writes them again with
// inserts that skip existing rows, so that writing the same calls twice
// changes nothing.
func (s *store) write(ctx context.Context, calls []call) error {
	conn, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var b rows
	if s.opts.LogMode.traces() {
		b.reserve(len(calls))
	}
	for _, c := range calls {
		exp, err := s.experiment(ctx, conn.Conn(), modelOf(c.rec))
		if err != nil {
			return err
		}
		runID := ""
		if s.opts.LogMode.runs() {
			runID = runUUID(c.rec.RequestID)
			b.addRun(c, exp)
		}
		if s.opts.LogMode.traces() {
			if err := b.addTrace(c, exp, runID, s.opts.GatewayEndpointID); err != nil {
				return &recordError{requestID: c.rec.RequestID, err: err}
			}
		}
	}
	return s.writeRows(ctx, conn.Conn(), &b, "write calls to the MLflow database")
}

// writeRows writes b's rows in one transaction: with COPY, and when a row
// exists already (a batch written before, by a writer that died before it
// could note it) again with inserts that skip existing rows.
func (s *store) writeRows(ctx context.Context, conn *pgx.Conn, b *rows, doing string) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return s.copyRows(ctx, tx, b.tables()) })
	if pgkit.SQLState(err) == pgkit.UniqueViolation {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return s.insertRows(ctx, tx, b.tables()) })
	}
	return s.classify(err, doing)
}

// conn returns a connection to the MLflow database, once the schema is
// verified (at the first write, and again after a failed one).
func (s *store) conn(ctx context.Context) (*pgxpool.Conn, error) {
	if s.schema == nil {
		if err := s.prepare(ctx); err != nil {
			return nil, err
		}
	}
	conn, err := s.conns.Acquire(ctx)
	if err != nil {
		return nil, classify(err, "connect to the MLflow database")
	}
	return conn, nil
}

// copyRows writes the tables' rows, parents first: with COPY where the
// schema has a column list for it, else with its insert statement.
func (s *store) copyRows(ctx context.Context, tx pgx.Tx, tables []tableRows) error {
	for _, t := range tables {
		if t.n == 0 {
			continue
		}
		cols, ok := s.schema.copies[t.table]
		if !ok {
			insert, payload, err := s.insert(t)
			if err != nil {
				return err
			}
			if insert != "" {
				if _, err := tx.Exec(ctx, insert, payload); err != nil {
					return err
				}
			}
			continue
		}
		values, err := columnValues(t.rows, cols)
		if err != nil {
			return &recordError{err: fmt.Errorf("%s rows: %w", t.table, err)}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, cols, pgx.CopyFromRows(values)); err != nil {
			return err
		}
	}
	return nil
}

// insertRows writes the tables' rows with their insert statements, in one
// round trip; each skips (or merges) rows whose primary key exists.
func (s *store) insertRows(ctx context.Context, tx pgx.Tx, tables []tableRows) error {
	batch := &pgx.Batch{}
	for _, t := range tables {
		if t.n == 0 {
			continue
		}
		insert, payload, err := s.insert(t)
		if err != nil {
			return err
		}
		if insert != "" {
			batch.Queue(insert, payload)
		}
	}
	return tx.SendBatch(ctx, batch).Close()
}

// insert returns the insert statement of t's table and its parameter, the
// rows as JSON; the statement is empty for a table tidygate does not write
// in bulk.
func (s *store) insert(t tableRows) (string, []byte, error) {
	insert, ok := s.schema.inserts[t.table]
	if !ok {
		return "", nil, nil
	}
	payload, err := json.Marshal(t.rows)
	if err != nil {
		return "", nil, &recordError{err: fmt.Errorf("%s rows: %w", t.table, err)}
	}
	return insert, payload, nil
}

// experiment returns the experiment of a model's calls, creating it on first use.
func (s *store) experiment(ctx context.Context, conn *pgx.Conn, model string) (experiment, error) {
	return s.ensure(ctx, conn, experimentSpec{suffix: model, tagKey: "tidygate.model", tagValue: model,
		note: "Calls to the model " + model + " through tidygate, one trace per call."})
}

// experimentSpec describes an experiment tidygate writes to: its name
// after ExperimentPrefix, its description, and the tag that says what it
// holds.
type experimentSpec struct {
	suffix, note, tagKey, tagValue string
}

// ensure returns the experiment spec describes, creating it on first use.
func (s *store) ensure(ctx context.Context, conn *pgx.Conn, spec experimentSpec) (experiment, error) {
	name := truncate(s.opts.ExperimentPrefix+spec.suffix, 256)
	if e, ok := s.experiments[name]; ok {
		return e, nil
	}
	e, deleted, err := ensureExperiment(ctx, conn, name, spec, s.schema.has("experiments", "workspace"))
	if err != nil {
		return experiment{}, s.classify(err, "create the MLflow experiment "+name)
	}
	if deleted {
		s.log.Warn("the MLflow experiment is deleted; its new traces and runs are hidden until it is restored", "experiment", name)
	}
	s.experiments[name] = e
	return e, nil
}

// ensureExperiment creates the experiment named name unless it exists;
// replicas may race, and the unique name decides. With workspaces,
// tidygate's experiments live in the default one (the column's default).
// They carry spec's description (mlflow.note.content, which MLflow's UI
// shows) and tag (tidygate.model for a model's calls), and never
// mlflow.experiment.isGateway: MLflow's experiment list hides every
// experiment with that tag.
func ensureExperiment(ctx context.Context, conn *pgx.Conn, name string, spec experimentSpec, workspaces bool) (e experiment, deleted bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		now := time.Now().UnixMilli()
		err := tx.QueryRow(ctx, `INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time)
			VALUES ($1, 'active', $2, $2) ON CONFLICT DO NOTHING RETURNING experiment_id`, name, now).Scan(&e.id)
		if err == nil {
			e.artifactLocation = artifactRoot + strconv.FormatInt(e.id, 10)
			if _, err := tx.Exec(ctx, "UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2",
				e.artifactLocation, e.id); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO experiment_tags (key, value, experiment_id)
				VALUES ('mlflow.note.content', $2, $1), ($3, $4, $1) ON CONFLICT DO NOTHING`,
				e.id, truncate(spec.note, 5000), spec.tagKey, truncate(spec.tagValue, 5000))
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		query := "SELECT experiment_id, coalesce(artifact_location, ''), coalesce(lifecycle_stage, '') FROM experiments WHERE name = $1"
		if workspaces {
			query += " AND workspace = 'default'"
		}
		var stage string
		if err := tx.QueryRow(ctx, query, name).Scan(&e.id, &e.artifactLocation, &stage); err != nil {
			return fmt.Errorf("experiment %q neither inserted nor found: %w", name, err)
		}
		if e.artifactLocation == "" {
			e.artifactLocation = artifactRoot + strconv.FormatInt(e.id, 10)
		}
		deleted = stage == "deleted"
		return nil
	})
	return e, deleted, err
}

// recordError is a failure to turn a record into rows: retrying cannot help.
type recordError struct {
	requestID string
	err       error
}

func (e *recordError) Error() string {
	return fmt.Sprintf("record %s cannot be written as MLflow rows: %v", e.requestID, e.err)
}

func (e *recordError) Unwrap() error { return e.err }

// refused reports whether err says the data itself was refused (a record
// that cannot be turned into rows, or what pgkit classifies as a duplicate
// or bad data), so that writing the same rows again fails again; other
// failures (connections, timeouts, a schema changing under tidygate) may
// pass on a later attempt.
func refused(err error) bool {
	if _, ok := errors.AsType[*recordError](err); ok {
		return true
	}
	switch pgkit.Classify(err) {
	case pgkit.Duplicate, pgkit.BadData:
		return true
	}
	return false
}

// classify classifies an error met while using a connection from s.conns,
// letting the pool see it first (pgkit.Classified).
func (s *store) classify(err error, doing string) error {
	return pgkit.Classified(s.conns, err, doing)
}

// classify turns a database failure into a domain error by pgkit's one
// table (pgkit.Error).
func classify(err error, doing string) error { return pgkit.Error(err, doing) }
