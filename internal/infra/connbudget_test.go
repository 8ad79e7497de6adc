package infra

import (
	"strings"
	"testing"
)

func TestEvaluateConnectionBudget(t *testing.T) {
	server := BudgetInput{MaxConnections: 100, SuperuserReservedConnections: 3, ReservedConnections: 2, OtherClients: 15} // 80 usable
	tests := []struct {
		name     string
		maxes    []int32
		replicas int
		warnOnly bool
		want     BudgetLevel
		demand   int
	}{
		{"well within", []int32{10}, 1, false, BudgetOK, 10},
		{"just below 80%", []int32{10, 53}, 1, false, BudgetOK, 63},
		{"at 80%", []int32{10, 54}, 1, false, BudgetWarn, 64},
		{"exactly 100%", []int32{10, 30}, 2, false, BudgetWarn, 80},
		{"above 100%", []int32{10, 30}, 3, false, BudgetRefuse, 120},
		{"above 100%, told to warn only", []int32{10, 30}, 3, true, BudgetWarn, 120},
		{"replicas multiply", []int32{10}, 9, false, BudgetRefuse, 90},
		{"zero replicas count as one", []int32{10}, 0, false, BudgetOK, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := server
			in.PoolMaxes, in.Replicas, in.WarnOnly = tt.maxes, tt.replicas, tt.warnOnly
			v := EvaluateConnectionBudget(in)
			if v.Level != tt.want || v.Demand != tt.demand || v.Usable != 80 {
				t.Fatalf("level %s demand %d usable %d, want %s %d 80\n%s", v.Level, v.Demand, v.Usable, tt.want, tt.demand, v.Message)
			}
			if !strings.Contains(v.Message, "connection budget") {
				t.Errorf("message does not say what it is about: %s", v.Message)
			}
			if v.Level != BudgetOK && !strings.Contains(v.Message, "Fix:") {
				t.Errorf("a %s verdict without the fix: %s", v.Level, v.Message)
			}
		})
	}
}

func TestConnectionBudgetMessagePrintsTheNumbersAndTheFix(t *testing.T) {
	v := EvaluateConnectionBudget(BudgetInput{
		MaxConnections: 20, SuperuserReservedConnections: 3, ReservedConnections: 1, OtherClients: 2,
		PoolMaxes: []int32{10, 30}, Replicas: 2,
	})
	if v.Level != BudgetRefuse {
		t.Fatalf("level %s", v.Level)
	}
	for _, want := range []string{
		"80 connections", "10 + 30 = 40 per replica", "REPLICAS=2", "14 usable", "max_connections 20",
		"superuser_reserved_connections 3", "reserved_connections 1", "2 connections of other clients", "572%",
		"DB_POOL_MAX_CONNS", "MLFLOW_SQLALCHEMY_POOL_SIZE", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW", "MLFLOW_POOL=shared",
		"max_connections", "RDS Proxy", "PgBouncer", "DB_CONNECTION_BUDGET=warn",
	} {
		if !strings.Contains(v.Message, want) {
			t.Errorf("the message lacks %q:\n%s", want, v.Message)
		}
	}
}

func TestConnectionBudgetWithNoUsableConnection(t *testing.T) {
	v := EvaluateConnectionBudget(BudgetInput{MaxConnections: 10, SuperuserReservedConnections: 3, OtherClients: 9, PoolMaxes: []int32{1}, Replicas: 1})
	if v.Level != BudgetRefuse || v.Usable != -2 || !strings.Contains(v.Message, "no connection is left") {
		t.Fatalf("%+v", v)
	}
}

func TestBudgetLevelString(t *testing.T) {
	for l, want := range map[BudgetLevel]string{BudgetOK: "ok", BudgetWarn: "warn", BudgetRefuse: "refuse", 7: "BudgetLevel(7)"} {
		if l.String() != want {
			t.Errorf("%d: %q", int(l), l.String())
		}
	}
}
