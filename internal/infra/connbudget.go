package infra

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// BudgetLevel is the outcome of the connection budget check.
type BudgetLevel int

// The budget levels.
const (
	BudgetOK     BudgetLevel = iota // below budgetWarnPercent of the usable connections
	BudgetWarn                      // at or above budgetWarnPercent, or above 100% with DB_CONNECTION_BUDGET=warn
	BudgetRefuse                    // above 100%: tidygate does not start
)

// String returns "ok", "warn" or "refuse".
func (l BudgetLevel) String() string {
	switch l {
	case BudgetOK:
		return "ok"
	case BudgetWarn:
		return "warn"
	case BudgetRefuse:
		return "refuse"
	}
	return "BudgetLevel(" + strconv.Itoa(int(l)) + ")"
}

// budgetWarnPercent is the share of the usable connections from which the
// check warns.
const budgetWarnPercent = 80

// BudgetInput is what the connection budget check compares: the server's
// connection slots and the most connections tidygate's pools may open.
type BudgetInput struct {
	MaxConnections               int     // the server's max_connections
	SuperuserReservedConnections int     // superuser_reserved_connections
	ReservedConnections          int     // reserved_connections (PostgreSQL 16+; 0 before)
	OtherClients                 int     // client connections now open whose application_name is not tidygate-*
	PoolMaxes                    []int32 // the maximum of each pool one replica opens to this server
	Replicas                     int     // REPLICAS: how many tidygate processes share the server
	WarnOnly                     bool    // DB_CONNECTION_BUDGET=warn: warn instead of refusing
}

// BudgetVerdict is the result of the connection budget check.
type BudgetVerdict struct {
	Level   BudgetLevel // BudgetOK, BudgetWarn or BudgetRefuse
	Demand  int         // Σ PoolMaxes × Replicas
	Usable  int         // MaxConnections − reserved slots − OtherClients
	Message string      // the numbers and, unless Level is BudgetOK, the fix
}

// EvaluateConnectionBudget compares the connections tidygate may open with
// those the server can still give: it warns from 80% of the usable
// connections and refuses above 100%, unless in.WarnOnly.
func EvaluateConnectionBudget(in BudgetInput) BudgetVerdict {
	replicas := max(in.Replicas, 1)
	perReplica := 0
	parts := make([]string, len(in.PoolMaxes))
	for i, m := range in.PoolMaxes {
		perReplica += int(m)
		parts[i] = strconv.Itoa(int(m))
	}
	v := BudgetVerdict{
		Demand: perReplica * replicas,
		Usable: in.MaxConnections - in.SuperuserReservedConnections - in.ReservedConnections - in.OtherClients,
	}
	over := v.Demand > v.Usable
	switch {
	case over && !in.WarnOnly:
		v.Level = BudgetRefuse
	case over || v.Demand*100 >= budgetWarnPercent*v.Usable:
		v.Level = BudgetWarn
	}

	share := "no connection is left for tidygate"
	if v.Usable > 0 {
		share = fmt.Sprintf("%d%% of them", (v.Demand*100+v.Usable-1)/v.Usable)
	}
	numbers := fmt.Sprintf("tidygate may open %d connections (pool maxima %s = %d per replica × REPLICAS=%d); "+
		"the server has %d usable (max_connections %d − superuser_reserved_connections %d − reserved_connections %d − %d connections of other clients): %s",
		v.Demand, strings.Join(parts, " + "), perReplica, replicas,
		v.Usable, in.MaxConnections, in.SuperuserReservedConnections, in.ReservedConnections, in.OtherClients, share)
	const fix = ". Fix: lower DB_POOL_MAX_CONNS, or MLFLOW_SQLALCHEMY_POOL_SIZE + MLFLOW_SQLALCHEMY_MAX_OVERFLOW for a dedicated MLflow pool; " +
		"lower REPLICAS; use MLFLOW_POOL=shared; raise the server's max_connections; or put RDS Proxy or PgBouncer in front"
	switch {
	case v.Level == BudgetRefuse:
		v.Message = "connection budget exceeded, refusing to start: " + numbers + fix + ". DB_CONNECTION_BUDGET=warn starts anyway."
	case over:
		v.Message = "connection budget exceeded (starting anyway: DB_CONNECTION_BUDGET=warn): " + numbers + fix + "."
	case v.Level == BudgetWarn:
		v.Message = fmt.Sprintf("connection budget above %d%%: %s%s.", budgetWarnPercent, numbers, fix)
	default:
		v.Message = "connection budget ok: " + numbers + "."
	}
	return v
}

// CheckConnectionBudget reads the server's connection settings and its other
// clients through p and evaluates the budget for poolMaxes (the maxima of the
// pools one replica opens to p's server) with d's REPLICAS and
// DB_CONNECTION_BUDGET.
func CheckConnectionBudget(ctx context.Context, d *Delegate, p *Pool, poolMaxes []int32) (BudgetVerdict, error) {
	conn, err := p.Acquire(ctx)
	if err != nil {
		return BudgetVerdict{}, err
	}
	defer conn.Release()
	ctx, cancel := context.WithTimeout(ctx, p.info.AcquireTimeout)
	defer cancel()
	in, err := readServerConnections(ctx, conn)
	if err != nil {
		return BudgetVerdict{}, p.Classify(err)
	}
	return EvaluateConnectionBudget(newBudgetPolicy(d.Config).input(in, poolMaxes)), nil
}

// budgetPolicy is the part of the configuration the budget check uses.
type budgetPolicy struct {
	replicas int
	warnOnly bool
}

func newBudgetPolicy(cfg Config) budgetPolicy {
	return budgetPolicy{replicas: cfg.Replicas, warnOnly: cfg.DBConnBudget == "warn"}
}

// input completes the server's numbers into a BudgetInput.
func (b budgetPolicy) input(server BudgetInput, poolMaxes []int32) BudgetInput {
	server.PoolMaxes = poolMaxes
	server.Replicas = b.replicas
	server.WarnOnly = b.warnOnly
	return server
}

// rowQuerier runs a query returning one row: a pooled or a bare connection.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// serverConnectionsSQL reads the server's connection slots and counts the
// client connections that are not tidygate's (whose pools all use an
// application_name starting with tidygate-).
const serverConnectionsSQL = `SELECT
	current_setting('max_connections')::int,
	current_setting('superuser_reserved_connections')::int,
	COALESCE(current_setting('reserved_connections', true), '0')::int,
	(SELECT count(*) FROM pg_stat_activity
	  WHERE backend_type = 'client backend'
	    AND COALESCE(application_name, '') NOT LIKE 'tidygate-%')::int`

// readServerConnections returns the server's half of a BudgetInput.
func readServerConnections(ctx context.Context, q rowQuerier) (BudgetInput, error) {
	var in BudgetInput
	err := q.QueryRow(ctx, serverConnectionsSQL).Scan(
		&in.MaxConnections, &in.SuperuserReservedConnections, &in.ReservedConnections, &in.OtherClients)
	if err != nil {
		return BudgetInput{}, fmt.Errorf("read the server's connection settings: %w", err)
	}
	return in, nil
}
