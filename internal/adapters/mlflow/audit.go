package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/domain"
)

// AuditExperiment is the name, after ExperimentPrefix, of the experiment
// that holds the administrative changes: "tidygate/admin" by default.
const AuditExperiment = "admin"

// auditBatch is the most audit entries one export writes.
const auditBatch = 100

// AuditOutbox holds the audit entries not yet exported; tidygate's key
// store is one.
type AuditOutbox interface {
	// ExportAudit claims up to limit entries not yet exported, oldest
	// first, that no other exporter holds, hands them to export and, when
	// export succeeds, records them as exported; it returns how many it
	// exported. When export fails, they stay to be claimed again.
	ExportAudit(ctx context.Context, limit int, export func(context.Context, []domain.AuditEntry) error) (int, error)
	// RefuseAudit records that MLflow's database refused the trace of the
	// entry id, for reason, so that no export claims it again.
	RefuseAudit(ctx context.Context, id int64, reason string) error
}

// AuditExporter records the audit log in MLflow: each entry becomes one
// trace in the experiment ExperimentPrefix+AuditExperiment, written from the
// outbox so that no entry is lost (an entry is exported until the export is
// recorded) and none is written twice (its trace is derived from the
// entry's ID, and a trace written again changes nothing). Its methods must
// not be called concurrently; exporters in several processes may run at
// once.
type AuditExporter struct {
	outbox   AuditOutbox
	store    *store
	log      *slog.Logger
	exported prometheus.Counter
	failures prometheus.Counter
	refusals prometheus.Counter
	failing  bool // the last export failed; logs only the transitions
}

// NewAuditExporter returns the exporter of outbox's entries to the MLflow
// database conns reaches, with the call log's options (the schema mode, the
// experiment prefix, the logger and the metrics' registry; it needs none of
// the journal's and the writer's). It writes
// traces whatever opts.LogMode says: the caller decides whether to export
// at all.
func NewAuditExporter(conns Conns, outbox AuditOutbox, opts Options) (*AuditExporter, error) {
	if opts.Schema != SchemaVerify && opts.Schema != SchemaCreate {
		return nil, fmt.Errorf("mlflow audit export options: schema mode %q (MLFLOW_SCHEMA) is not verify or create", opts.Schema)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mlflow audit export")
	opts.LogMode = LogTraces // the schema checked is the traces'
	metric := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tidygate", Subsystem: "audit_export", Name: name, Help: help})
	}
	x := &AuditExporter{outbox: outbox, store: newStore(conns, opts, log), log: log,
		exported: metric("traces_total", "Audit entries written to MLflow as traces of the admin experiment and marked exported."),
		failures: metric("failures_total", "Exports of audit entries to MLflow that failed; their entries stay in the outbox for the next attempt."),
		refusals: metric("refused_total", "Audit entries whose trace MLflow's database refused for its data; recorded as refused, they stay in the audit log.")}
	if opts.Registerer != nil {
		if err := registerAll(opts.Registerer, x.exported, x.failures, x.refusals); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Export exports one batch of entries, within attemptTimeout, and returns
// how many it exported. When MLflow's database refuses the batch for its
// data, the entries are exported one at a time until the one at fault is
// found and recorded as refused, so that one entry cannot hold back the
// audit trail behind it. A failure is logged when exports start failing
// and when they succeed again.
func (x *AuditExporter) Export(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	n, err := x.outbox.ExportAudit(ctx, auditBatch, x.write)
	if err != nil && refused(err) {
		x.log.Warn("MLflow refused a batch of audit entries; exporting them one by one to find the entry at fault", "err", err)
		n, err = x.isolate(ctx)
	}
	if err != nil {
		x.failures.Inc()
		if !x.failing {
			x.log.Warn("exporting the audit log to MLflow failed; the entries stay in the outbox and are retried", "err", err)
		}
		x.failing = true
		return 0, err
	}
	if x.failing {
		x.log.Info("exporting the audit log to MLflow works again")
	}
	x.failing = false
	x.exported.Add(float64(n))
	return n, nil
}

// isolate exports the oldest entries one at a time, up to a batch of them,
// until MLflow's database refuses one alone: it records that entry as
// refused and returns how many it exported.
func (x *AuditExporter) isolate(ctx context.Context) (int, error) {
	exported := 0
	for range auditBatch {
		var atFault *domain.AuditEntry
		n, err := x.outbox.ExportAudit(ctx, 1, func(ctx context.Context, entries []domain.AuditEntry) error {
			err := x.write(ctx, entries)
			if err != nil && refused(err) {
				atFault = &entries[0]
			}
			return err
		})
		switch {
		case err == nil && n == 0:
			return exported, nil
		case err == nil:
			exported += n
			continue
		case atFault == nil:
			return exported, err
		}
		if rerr := x.outbox.RefuseAudit(ctx, atFault.ID, err.Error()); rerr != nil {
			return exported, rerr
		}
		x.refusals.Inc()
		x.log.Error("MLflow refused an audit entry's trace: it is recorded as refused and stays in the audit log (GET /admin/v1/audit)",
			"audit_id", atFault.ID, "action", atFault.Action, "target", atFault.Target, "err", err)
		return exported, nil
	}
	return exported, nil
}

// Drain exports until no entry is left, and returns nil then, or the
// failure that stopped it (ctx's end among them).
func (x *AuditExporter) Drain(ctx context.Context) error {
	for {
		n, err := x.Export(ctx)
		if err != nil {
			return err
		}
		if n < auditBatch {
			return nil
		}
	}
}

// write writes the entries' traces in one transaction of the MLflow
// database.
func (x *AuditExporter) write(ctx context.Context, entries []domain.AuditEntry) error {
	s := x.store
	conn, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	exp, err := s.ensure(ctx, conn.Conn(), experimentSpec{suffix: AuditExperiment, tagKey: "tidygate.kind", tagValue: "admin",
		note: "Administrative changes made through tidygate (API keys, admin keys, budgets, limits), one trace per audit log entry."})
	if err != nil {
		s.reset()
		return err
	}
	var b rows
	for _, e := range entries {
		if err := b.addAuditTrace(e, exp); err != nil {
			return &recordError{requestID: domain.AuditTraceKey(e), err: err}
		}
	}
	if err := s.writeRows(ctx, conn.Conn(), &b, "write the audit log to the MLflow database"); err != nil {
		s.reset()
		return err
	}
	return nil
}

// auditOutcome is what every exported change did: only a change that was
// committed has an audit entry.
const auditOutcome = "applied"

// auditRequest is an audit trace's inputs: the change.
type auditRequest struct {
	Action string `json:"action"`
	Target string `json:"target"`
	Before any    `json:"before"` // null when the target did not exist before
	After  any    `json:"after"`  // null when it does not exist after
}

// auditResponse is an audit trace's outputs: what came of the change.
type auditResponse struct {
	Outcome string `json:"outcome"`
	Target  string `json:"target"`
}

// addAuditTrace appends the rows of the audit entry e's trace to b: one
// root span "admin/<action>" at the entry's time, the change (action,
// target, state before and after) as its inputs and the outcome as its
// outputs, and the actor, the reason, the action and the target in the
// trace's metadata and tags.
func (b *rows) addAuditTrace(e domain.AuditEntry, exp experiment) error {
	ids := newTraceIDs(domain.AuditTraceKey(e))
	traceID := ids.traceID()
	rootName := "admin/" + e.Action
	inputs, err := marshalJSON(auditRequest{Action: e.Action, Target: e.Target, Before: auditState(e.Before), After: auditState(e.After)})
	if err != nil {
		return err
	}
	outputs, err := marshalJSON(auditResponse{Outcome: auditOutcome, Target: e.Target})
	if err != nil {
		return err
	}
	actor := e.Actor.String()
	info := traceInfoRow{RequestID: traceID, ExperimentID: exp.id, TimestampMS: e.At.UnixMilli(), Status: statusOK,
		RequestPreview: truncate(inputs, maxPreview), ResponsePreview: truncate(outputs, maxPreview), TraceName: truncate(rootName, 0)}
	meta := []metaEntry{
		{"mlflow.trace_schema.version", "3"},
		{"mlflow.trace.infoFinalized", "true"},
		{"mlflow.traceInputs", inputs},
		{"mlflow.traceOutputs", outputs},
		{"mlflow.source.name", "tidygate"},
		{"mlflow.source.type", "LOCAL"},
		{"mlflow.user", "tidygate"},
		{"mlflow.trace.user", actor},
		{"tidygate.audit_id", strconv.FormatInt(e.ID, 10)},
		{"tidygate.action", e.Action},
		{"tidygate.target", e.Target},
		{"tidygate.actor", actor},
		{"tidygate.actor_kind", string(e.Actor.Kind)},
		{"tidygate.audit_reason", e.Reason},
		{"tidygate.outcome", auditOutcome},
	}
	tags := []metaEntry{
		{"mlflow.traceName", rootName},
		{"mlflow.artifactLocation", exp.artifactLocation + "/traces/" + traceID + "/artifacts"},
		{"mlflow.trace.spansLocation", "TRACKING_STORE"},
		{"tidygate.kind", "admin"},
		{"tidygate.action", e.Action},
		{"tidygate.target", e.Target},
		{"tidygate.actor", actor},
	}
	rootAttrs := map[string]any{"mlflow.spanInputs": json.RawMessage(inputs), "mlflow.spanOutputs": json.RawMessage(outputs)}
	keepLongMetadata(rootAttrs, meta)
	first := len(b.spans)
	if err := b.addSpan(exp, spanSpec{ids: ids, id: ids.root, name: rootName, spanType: spanTypeUnknown,
		start: e.At, end: e.At, attributes: rootAttrs}); err != nil {
		return err
	}
	b.appendTrace(info, meta, tags, first)
	return nil
}

// The states of an audited target in an audit trace: what an administrator
// can see of it, never a secret or a hash.
type (
	keyState struct {
		Kind          string        `json:"kind"` // "api_key"
		ID            string        `json:"id"`
		User          string        `json:"user"`
		Team          string        `json:"team"`
		AllowedModels []string      `json:"allowed_models,omitempty"`
		RPM           int           `json:"rpm,omitempty"`
		TPM           int           `json:"tpm,omitempty"`
		MaxConcurrent int           `json:"max_concurrent,omitempty"`
		Budgets       []budgetState `json:"budgets,omitempty"`
		CreatedAt     time.Time     `json:"created_at"`
		RevokedAt     *time.Time    `json:"revoked_at,omitempty"`
		ExpiresAt     *time.Time    `json:"expires_at,omitempty"`
		RotatedAt     *time.Time    `json:"rotated_at,omitempty"`
		GraceUntil    *time.Time    `json:"previous_valid_until,omitempty"`
	}
	adminKeyState struct {
		Kind      string     `json:"kind"` // "admin_key"
		ID        string     `json:"id"`
		Name      string     `json:"name"`
		Scopes    []string   `json:"scopes"`
		CreatedAt time.Time  `json:"created_at"`
		RevokedAt *time.Time `json:"revoked_at,omitempty"`
	}
	principalState struct {
		Kind    string        `json:"kind"` // "user" or "team"
		ID      string        `json:"id"`
		Budgets []budgetState `json:"budgets"`
	}
	limitsState struct {
		Kind          string `json:"kind"`  // "limits"
		Scope         string `json:"scope"` // "user" or "team"
		ID            string `json:"id"`
		RPM           int    `json:"rpm"`
		TPM           int    `json:"tpm"`
		MaxConcurrent int    `json:"max_concurrent"`
	}
	budgetState struct {
		Scope    string `json:"scope"`
		ScopeID  string `json:"scope_id"`
		Period   string `json:"period"`
		LimitUSD string `json:"limit_usd"`
		Model    string `json:"model,omitempty"`
	}
)

// auditState returns the trace's form of an audit entry's state (nil
// stays null).
func auditState(v any) any {
	switch t := v.(type) {
	case *domain.APIKey:
		s := keyState{Kind: "api_key", ID: t.ID, User: t.Caller.User, Team: t.Caller.Team, AllowedModels: t.Caller.AllowedModels,
			RPM: t.Caller.RPM, TPM: t.Caller.TPM, MaxConcurrent: t.Caller.MaxConcurrent, Budgets: budgetStates(t.Caller.Budgets),
			CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt, RotatedAt: t.RotatedAt, GraceUntil: t.PreviousValidUntil}
		if !t.Caller.KeyExpiresAt.IsZero() {
			s.ExpiresAt = &t.Caller.KeyExpiresAt
		}
		return s
	case *domain.AdminKey:
		s := adminKeyState{Kind: "admin_key", ID: t.ID, Name: t.Name, Scopes: []string{}, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
		for _, sc := range t.Scopes {
			s.Scopes = append(s.Scopes, string(sc))
		}
		return s
	case *domain.Principal:
		return principalState{Kind: string(t.Scope), ID: t.ID, Budgets: budgetStates(t.Budgets)}
	case *domain.LimitsOf:
		return limitsState{Kind: "limits", Scope: string(t.Scope), ID: t.ID, RPM: t.Limits.RPM, TPM: t.Limits.TPM, MaxConcurrent: t.Limits.MaxConcurrent}
	}
	return nil
}

func budgetStates(budgets []domain.Budget) []budgetState {
	out := []budgetState{}
	for _, b := range budgets {
		out = append(out, budgetState{Scope: string(b.Scope), ScopeID: b.ScopeID, Period: string(b.Period),
			LimitUSD: strings.TrimPrefix(b.Limit.String(), "$"), Model: b.Model})
	}
	return out
}
