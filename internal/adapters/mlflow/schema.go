package mlflow

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/domain"
)

//go:embed schema.sql
var createSQL string

// createdHead is the alembic revision the tables in schema.sql correspond
// to. It is written only into a database that has no alembic_version table,
// and never required of one that has.
const createdHead = "7d34483879f0"

// schemaLockKey is the advisory lock that serializes schema creation across
// replicas ("tidygate" in ASCII).
const schemaLockKey int64 = 0x7469647967617465

// column is a column tidygate writes, with the type it is sent as.
type column struct {
	name     string
	sqlType  string // the type in json_to_recordset's column definition list
	optional bool   // only newer MLflow versions have it; written when present
}

// part says which log mode needs a table.
type part uint8

const (
	partExperiments part = iota // needed in every mode
	partTraces
	partRuns
)

// table is an MLflow table tidygate writes.
type table struct {
	name     string
	part     part
	columns  []column
	optional bool   // only newer MLflow versions have it; skipped when absent
	conflict string // the ON CONFLICT clause of the bulk insert; empty for tables written row by row
}

const doNothing = "ON CONFLICT DO NOTHING"

func req(name, sqlType string) column { return column{name: name, sqlType: sqlType} }
func opt(name, sqlType string) column { return column{name: name, sqlType: sqlType, optional: true} }

// mlflowTables lists the tables tidygate writes, parents before children.
// The generated column spans.duration_ns is never written.
func mlflowTables() []table {
	keyValue := func(owner string) []column {
		return []column{req("key", "text"), req("value", "text"), req(owner, "text")}
	}
	metric := []column{req("key", "text"), req("value", "double precision"), req("timestamp", "bigint"),
		req("step", "bigint"), req("is_nan", "boolean"), req("run_uuid", "text")}
	return []table{
		{name: "experiments", part: partExperiments, columns: []column{
			req("experiment_id", ""), req("name", ""), req("artifact_location", ""), req("lifecycle_stage", ""),
			req("creation_time", ""), req("last_update_time", ""), opt("workspace", ""),
		}},
		{name: "experiment_tags", part: partExperiments, columns: keyValue("experiment_id")},
		{name: "trace_info", part: partTraces, conflict: doNothing, columns: []column{
			req("request_id", "text"), req("experiment_id", "integer"), req("timestamp_ms", "bigint"),
			req("execution_time_ms", "bigint"), req("status", "text"), req("client_request_id", "text"),
			req("request_preview", "text"), req("response_preview", "text"),
			opt("trace_name", "text"),
			opt("input_tokens", "bigint"), opt("output_tokens", "bigint"), opt("total_tokens", "bigint"),
			opt("input_cost", "double precision"), opt("output_cost", "double precision"), opt("total_cost", "double precision"),
		}},
		{name: "trace_tags", part: partTraces, conflict: doNothing, columns: keyValue("request_id")},
		{name: "trace_request_metadata", part: partTraces, conflict: doNothing, columns: keyValue("request_id")},
		{name: "trace_metrics", part: partTraces, conflict: doNothing, optional: true, columns: []column{
			req("request_id", "text"), req("key", "text"), req("value", "double precision"),
		}},
		{name: "spans", part: partTraces, conflict: doNothing, columns: []column{
			req("trace_id", "text"), req("experiment_id", "integer"), req("span_id", "text"),
			req("parent_span_id", "text"), req("name", "text"), req("type", "text"), req("status", "text"),
			req("start_time_unix_nano", "bigint"), req("end_time_unix_nano", "bigint"), req("content", "text"),
			opt("dimension_attributes", "json"), opt("model_name", "text"), opt("model_provider", "text"),
			opt("input_cost", "double precision"), opt("output_cost", "double precision"), opt("total_cost", "double precision"),
		}},
		{name: "span_metrics", part: partTraces, conflict: doNothing, optional: true, columns: []column{
			req("trace_id", "text"), req("span_id", "text"), req("key", "text"), req("value", "double precision"),
		}},
		{name: "runs", part: partRuns, conflict: doNothing, columns: []column{
			req("run_uuid", "text"), req("name", "text"), req("source_type", "text"), req("source_name", "text"),
			req("entry_point_name", "text"), req("user_id", "text"), req("status", "text"),
			req("start_time", "bigint"), req("end_time", "bigint"), req("source_version", "text"),
			req("lifecycle_stage", "text"), req("artifact_uri", "text"), req("experiment_id", "integer"),
		}},
		{name: "tags", part: partRuns, conflict: doNothing, columns: keyValue("run_uuid")},
		{name: "params", part: partRuns, conflict: doNothing, columns: keyValue("run_uuid")},
		{name: "metrics", part: partRuns, conflict: doNothing, columns: metric},
		// MLflow replaces a latest metric only by a greater (step, timestamp, value).
		{name: "latest_metrics", part: partRuns, columns: metric, conflict: `ON CONFLICT (key, run_uuid) DO UPDATE
			SET value = EXCLUDED.value, "timestamp" = EXCLUDED."timestamp", step = EXCLUDED.step, is_nan = EXCLUDED.is_nan
			WHERE (EXCLUDED.step, EXCLUDED."timestamp", EXCLUDED.value) > (latest_metrics.step, latest_metrics."timestamp", latest_metrics.value)`},
	}
}

func (p part) neededBy(m LogMode) bool {
	switch p {
	case partTraces:
		return m.traces()
	case partRuns:
		return m.runs()
	}
	return true
}

// schema is what tidygate found in the MLflow database: the alembic
// revision and the columns of the tables it writes, with the insert
// statements for the tables to write.
type schema struct {
	revision string
	columns  map[string]map[string]bool // table → column → present
	inserts  map[string]string          // table → INSERT … SELECT … FROM json_to_recordset($1)
	copies   map[string][]string        // table → the columns COPY writes, for the tables that only gain rows
}

// has reports whether the table has the column.
func (s *schema) has(table, column string) bool { return s.columns[table][column] }

// createSchema creates the tables in schema.sql that are missing, and an
// alembic_version row when that table is missing, in one transaction under
// an advisory lock so that replicas starting together do not collide.
func createSchema(ctx context.Context, conn *pgx.Conn) (createdAlembic bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
			return err
		}
		var absent bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass('alembic_version') IS NULL").Scan(&absent); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createSQL); err != nil {
			return err
		}
		if !absent {
			return nil
		}
		createdAlembic = true
		if _, err := tx.Exec(ctx, `CREATE TABLE alembic_version (
			version_num VARCHAR(32) NOT NULL,
			CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO alembic_version (version_num) VALUES ($1)", createdHead)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("create the MLflow tables: %w", err)
	}
	return createdAlembic, nil
}

// verifySchema reads the alembic revision and the columns of the tables the
// log mode writes, and fails with a message naming every missing table and
// column when MLflow's schema lacks one tidygate needs.
func verifySchema(ctx context.Context, conn *pgx.Conn, mode LogMode) (*schema, error) {
	tables := mlflowTables()
	names := make([]string, 0, len(tables)+1)
	names = append(names, "alembic_version")
	for _, t := range tables {
		names = append(names, t.name)
	}
	rows, err := conn.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("read the MLflow schema: %w", err)
	}
	s := &schema{columns: map[string]map[string]bool{}, inserts: map[string]string{}, copies: map[string][]string{}}
	var tableName, columnName string
	_, err = pgx.ForEachRow(rows, []any{&tableName, &columnName}, func() error {
		if s.columns[tableName] == nil {
			s.columns[tableName] = map[string]bool{}
		}
		s.columns[tableName][columnName] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the MLflow schema: %w", err)
	}
	if s.columns["alembic_version"] != nil {
		var heads []string
		rows, err := conn.Query(ctx, "SELECT version_num FROM alembic_version ORDER BY version_num")
		if err == nil {
			heads, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return nil, fmt.Errorf("read the MLflow schema revision: %w", err)
		}
		s.revision = strings.Join(heads, ",")
	}

	var missing []string
	for _, t := range tables {
		if !t.part.neededBy(mode) {
			continue
		}
		present := s.columns[t.name]
		if present == nil {
			if !t.optional {
				missing = append(missing, fmt.Sprintf("table %s is missing", t.name))
			}
			continue
		}
		for _, c := range t.columns {
			if !c.optional && !present[c.name] {
				missing = append(missing, fmt.Sprintf("table %s lacks column %s", t.name, c.name))
			}
		}
		if t.conflict != "" {
			s.inserts[t.name] = insertSQL(t, present)
		}
		if t.conflict == doNothing {
			s.copies[t.name] = presentColumns(t, present)
		}
	}
	if len(missing) > 0 {
		return nil, domain.Errorf(domain.KindInternal,
			"the MLflow schema (alembic revision %q) lacks what tidygate writes: %s; run `mlflow db upgrade <uri>` against this database (or, for development only, set MLFLOW_SCHEMA=create)",
			s.revision, strings.Join(missing, "; "))
	}
	return s, nil
}

// presentColumns returns the names of t's columns that are present.
func presentColumns(t table, present map[string]bool) []string {
	var names []string
	for _, c := range t.columns {
		if present[c.name] {
			names = append(names, c.name)
		}
	}
	return names
}

// insertSQL returns the statement that inserts a JSON array of rows into t,
// naming only the columns present. Identifiers come from mlflowTables, never
// from data; the rows are the statement's one parameter.
func insertSQL(t table, present map[string]bool) string {
	var names, defs []string
	for _, c := range t.columns {
		if present[c.name] {
			names = append(names, `"`+c.name+`"`)
			defs = append(defs, `"`+c.name+`" `+c.sqlType)
		}
	}
	cols := strings.Join(names, ", ")
	return "INSERT INTO " + t.name + " (" + cols + ") SELECT " + cols +
		" FROM json_to_recordset($1::json) AS r(" + strings.Join(defs, ", ") + ") " + t.conflict
}

// optionalColumns lists the optional columns found, as table.column, for the log.
func (s *schema) optionalColumns() []string {
	var out []string
	for _, t := range mlflowTables() {
		for _, c := range t.columns {
			if c.optional && s.has(t.name, c.name) {
				out = append(out, t.name+"."+c.name)
			}
		}
	}
	slices.Sort(out)
	return out
}
