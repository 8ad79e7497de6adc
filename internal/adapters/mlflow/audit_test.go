package mlflow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// TestAuditTraceHoldsTheChange checks an audit entry's trace: its ID
// derived from the entry's, the entry's time, the change as the root span's
// inputs (limits before and after), the outcome as its outputs, and the
// actor, the reason, the action and the target in metadata and tags.
func TestAuditTraceHoldsTheChange(t *testing.T) {
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	reason := "quarter plan " + strings.Repeat("r", 300)
	e := domain.AuditEntry{ID: 42, TraceKey: "0b5c3f5e-9d1e-4c7a-8a52-2f0e7d9b6a11", At: at, Action: "limits.set", Target: "team:risk", Reason: reason,
		Actor:  domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_ops"},
		Before: &domain.LimitsOf{Scope: domain.LimitTeam, ID: "risk", Limits: domain.Limits{TPM: 100_000}},
		After:  &domain.LimitsOf{Scope: domain.LimitTeam, ID: "risk", Limits: domain.Limits{RPM: 600}}}
	var b rows
	if err := b.addAuditTrace(e, testExperiment); err != nil {
		t.Fatal(err)
	}
	if len(b.traceInfo) != 1 || len(b.spans) != 1 {
		t.Fatalf("%d traces and %d spans; want one of each", len(b.traceInfo), len(b.spans))
	}
	info := b.traceInfo[0]
	if info.RequestID != domain.TraceID("audit-0b5c3f5e-9d1e-4c7a-8a52-2f0e7d9b6a11") || info.TimestampMS != at.UnixMilli() || info.Status != statusOK || info.TraceName != "admin/limits.set" {
		t.Errorf("trace_info %+v", info)
	}
	meta := metadata(b)
	for k, want := range map[string]string{"tidygate.actor": "admin_key:adm_ops", "mlflow.trace.user": "admin_key:adm_ops",
		"tidygate.action": "limits.set", "tidygate.target": "team:risk", "tidygate.audit_id": "42", "tidygate.outcome": "applied",
		"tidygate.audit_reason": reason[:maxMetadataValue-3] + "..."} {
		if meta[k] != want {
			t.Errorf("metadata %s = %q; want %q", k, meta[k], want)
		}
	}
	tags := map[string]string{}
	for _, kv := range b.traceTags {
		tags[kv.Key] = kv.Value
	}
	if tags["tidygate.kind"] != "admin" || tags["tidygate.actor"] != "admin_key:adm_ops" || tags["tidygate.action"] != "limits.set" {
		t.Errorf("tags %v", tags)
	}
	root := parseSpan(t, b.spans[0])
	if root.StartTimeUnixNano != at.UnixNano() || root.ParentSpanID != nil {
		t.Errorf("root span %+v", root)
	}
	var in struct {
		Action, Target string
		Before, After  limitsState
	}
	if err := json.Unmarshal([]byte(root.Attributes["mlflow.spanInputs"]), &in); err != nil {
		t.Fatalf("inputs %s: %v", root.Attributes["mlflow.spanInputs"], err)
	}
	if in.Action != "limits.set" || in.Target != "team:risk" || in.Before.TPM != 100_000 || in.Before.RPM != 0 || in.After.RPM != 600 || in.After.TPM != 0 {
		t.Errorf("inputs %+v", in)
	}
	if out := root.Attributes["mlflow.spanOutputs"]; out != `{"outcome":"applied","target":"team:risk"}` {
		t.Errorf("outputs %s", out)
	}
	var whole string
	if err := json.Unmarshal([]byte(root.Attributes["tidygate.audit_reason"]), &whole); err != nil || whole != reason {
		t.Errorf("the root span keeps the reason as %q (%v); want it whole", whole, err)
	}
}

// TestAuditTraceOfACreatedKey checks that a new key's trace has no state
// before and the key after, and nothing of a secret.
func TestAuditTraceOfACreatedKey(t *testing.T) {
	key := &domain.APIKey{ID: "key_1", Caller: domain.Caller{User: "alice", Team: "risk", RPM: 60,
		Budgets: []domain.Budget{{Scope: domain.ScopeKey, ScopeID: "key_1", Period: domain.PeriodDay, Limit: 5_000_000}}}}
	var b rows
	if err := b.addAuditTrace(domain.AuditEntry{ID: 1, Action: "key.create", Target: "key_1", Reason: "onboarding",
		Actor: domain.Actor{Kind: domain.ActorCLI, ID: "root"}, After: key}, testExperiment); err != nil {
		t.Fatal(err)
	}
	var in struct {
		Before *keyState
		After  keyState
	}
	if err := json.Unmarshal([]byte(parseSpan(t, b.spans[0]).Attributes["mlflow.spanInputs"]), &in); err != nil {
		t.Fatal(err)
	}
	if in.Before != nil || in.After.ID != "key_1" || in.After.User != "alice" || in.After.RPM != 60 ||
		len(in.After.Budgets) != 1 || in.After.Budgets[0].LimitUSD != "5.000000" {
		t.Errorf("inputs %+v", in)
	}
}
