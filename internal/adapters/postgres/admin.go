package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
)

// CreateKey stores a new key as Create does and, in the same transaction,
// the audit entry e with the new key as its target and after state. A
// budget of the key's user or team that nk names with another limit than
// the one it has is refused unless nk.ReplaceBudgets is set
// (domain.CheckReplacedBudgets); when the key replaces a budget or a limit
// its user or team had, the change of each is audited too, as e's actor
// and reason with the action user.update or team.update and their budgets
// and limits before and after. It returns the key and its secret, which
// is not stored.
func (s *KeyStore) CreateKey(ctx context.Context, nk NewKey, e domain.AuditEntry) (domain.APIKey, string, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if err := checkNewKey(nk); err != nil {
		return domain.APIKey{}, "", err
	}
	secret, err := domain.NewKeySecret()
	if err != nil {
		return domain.APIKey{}, "", domain.Wrap(domain.KindInternal, err, "cannot make a key secret")
	}
	var key domain.APIKey
	err = pgkit.WithTx(ctx, s.db, "store the API key", func(tx pgx.Tx) error {
		owners := [2]domain.Principal{{Scope: domain.ScopeUser, ID: nk.User}, {Scope: domain.ScopeTeam, ID: nk.Team}}
		var have []domain.Budget
		for i, o := range owners {
			if err := lockPrincipal(ctx, tx, o.Scope, o.ID); err != nil {
				return err
			}
			if owners[i], err = principal(ctx, tx, o.Scope, o.ID); err != nil {
				return err
			}
			have = append(have, owners[i].Budgets...)
		}
		if _, err := domain.CheckReplacedBudgets(have, nk); err != nil {
			return err
		}
		k, created, err := insertKeyTx(ctx, tx, domain.HashKey(secret), nk)
		if err != nil {
			return err
		}
		if !created { // two equal 256-bit secrets: never, short of a broken random source
			return domain.Errorf(domain.KindInternal, "cannot create the API key: its secret is already in use")
		}
		key = k
		entry := e
		entry.Target, entry.After = k.ID, &k
		if err := appendAudit(ctx, tx, entry); err != nil {
			return err
		}
		for _, before := range owners {
			after, err := principal(ctx, tx, before.Scope, before.ID)
			if err != nil {
				return err
			}
			if !domain.StandingReplaced(before, after) {
				continue
			}
			changed := e
			changed.Action, changed.Target, changed.Before, changed.After = string(before.Scope)+".update", string(before.Scope)+":"+before.ID, &before, &after
			if err := appendAudit(ctx, tx, changed); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return domain.APIKey{}, "", err
	}
	// Its budgets may have changed those of its user's and team's other keys.
	s.announce(scopeOf(domain.ScopeUser, nk.User), scopeOf(domain.ScopeTeam, nk.Team))
	return key, secret, nil
}

// Key returns the key with this ID, revoked or not, or a domain.KindNotFound
// error.
func (s *KeyStore) Key(ctx context.Context, id string) (domain.APIKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var key domain.APIKey
	err := pgkit.WithConn(ctx, s.db, "read the API key", func(conn *pgxpool.Conn) error {
		var err error
		key, err = keyByID(ctx, conn, id, "")
		return err
	})
	return key, err
}

// RevokeKey revokes the key with this ID, as Revoke does, and stores the
// audit entry e with the key's state before and after in the same
// transaction. Revoking a revoked key changes nothing and stores no entry:
// it returns the key as it was revoked. When ifMatch is set and is not the key's version
// (domain.KeyVersion), nothing changes and the error says so. It returns the
// revoked key.
func (s *KeyStore) RevokeKey(ctx context.Context, id, ifMatch string, e domain.AuditEntry) (domain.APIKey, error) {
	return s.changeKey(ctx, "revoke the API key", id, ifMatch, e, func(ctx context.Context, tx pgx.Tx, _ domain.APIKey) error {
		_, err := tx.Exec(ctx, "UPDATE tidygate_api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id)
		return err
	})
}

// RotateKey gives the key with this ID a new secret and returns the key and
// the secret, which is not stored. The replaced secret keeps working for
// grace (0: not at all); a secret replaced by an earlier rotation stops at
// once. The key keeps its ID, policy and budgets. ifMatch and the audit
// entry e work as in RevokeKey. A revoked key cannot be rotated.
func (s *KeyStore) RotateKey(ctx context.Context, id string, grace time.Duration, ifMatch string, e domain.AuditEntry) (domain.APIKey, string, error) {
	if grace < 0 {
		return domain.APIKey{}, "", domain.InvalidParam("grace", "the grace period must not be negative")
	}
	secret, err := domain.NewKeySecret()
	if err != nil {
		return domain.APIKey{}, "", domain.Wrap(domain.KindInternal, err, "cannot make a key secret")
	}
	key, err := s.changeKey(ctx, "rotate the API key", id, ifMatch, e, func(ctx context.Context, tx pgx.Tx, before domain.APIKey) error {
		if before.RevokedAt != nil {
			return revokedKey(id)
		}
		now := s.now().UTC()
		_, err := tx.Exec(ctx, `UPDATE tidygate_api_keys SET previous_key_hash = key_hash, key_hash = $2,
			rotated_at = $3, previous_valid_until = $4 WHERE id = $1`, id, domain.HashKey(secret), now, now.Add(grace))
		return err
	})
	if err != nil {
		return domain.APIKey{}, "", err
	}
	return key, secret, nil
}

// SetKeyExpiry sets the expiry of the key with this ID (the zero time:
// none); ifMatch and the audit entry e work as in RevokeKey. A revoked key
// cannot change, as in RotateKey and UpdateKey.
func (s *KeyStore) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time, ifMatch string, e domain.AuditEntry) (domain.APIKey, error) {
	var expires *time.Time
	if !expiresAt.IsZero() {
		expires = &expiresAt
	}
	return s.changeKey(ctx, "set the API key's expiry", id, ifMatch, e, func(ctx context.Context, tx pgx.Tx, before domain.APIKey) error {
		if before.RevokedAt != nil {
			return revokedKey(id)
		}
		_, err := tx.Exec(ctx, "UPDATE tidygate_api_keys SET expires_at = $2 WHERE id = $1", id, expires)
		return err
	})
}

// changeKey is one audited change of the key with this ID, in one
// transaction: it locks the key, checks ifMatch against its version, lets
// update change it, and stores e with the key's state before and after.
// It returns the changed key.
func (s *KeyStore) changeKey(ctx context.Context, what, id, ifMatch string, e domain.AuditEntry,
	update func(ctx context.Context, tx pgx.Tx, before domain.APIKey) error) (domain.APIKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var key domain.APIKey
	err := pgkit.WithTx(ctx, s.db, what, func(tx pgx.Tx) error {
		before, err := keyByID(ctx, tx, id, " FOR UPDATE OF k")
		if err != nil {
			return err
		}
		if err := domain.CheckKeyVersion(before, ifMatch); err != nil {
			return err
		}
		if err := update(ctx, tx, before); err != nil {
			return err
		}
		if key, err = keyByID(ctx, tx, id, ""); err != nil {
			return err
		}
		e.Target, e.Before, e.After = id, &before, &key
		return appendAudit(ctx, tx, e)
	})
	if err == nil { // update may have changed the budgets of the key's user and team too
		s.announce(scopeOf(domain.ScopeKey, id), scopeOf(domain.ScopeUser, key.Caller.User), scopeOf(domain.ScopeTeam, key.Caller.Team))
	}
	return key, err
}

// keyByID reads one key, with suffix (such as a locking clause) appended to
// the query, or returns a domain.KindNotFound error.
func keyByID(ctx context.Context, q querier, id, suffix string) (domain.APIKey, error) {
	if checkName("id", id, true) != nil {
		return domain.APIKey{}, keyNotFound(id)
	}
	keys, err := queryKeys(ctx, q, selectKeys+" WHERE k.id = $1 ORDER BY k.id"+suffix, id)
	if err != nil {
		return domain.APIKey{}, err
	}
	if len(keys) != 1 {
		return domain.APIKey{}, keyNotFound(id)
	}
	return keys[0].key, nil
}

// revokedKey is the error for a change of a revoked key other than
// revoking it again: a revoked key stays as it was revoked.
func revokedKey(id string) error {
	return domain.InvalidParam("id", "the key %s is revoked; create a new key instead", id)
}

func keyNotFound(id string) error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "key_not_found", Param: "id",
		Message: fmt.Sprintf("there is no API key with ID %q", id)}
}

// CreateAdminKey stores a new admin key and the audit entry e in one
// transaction, and returns the key and its secret, which is not stored.
func (s *KeyStore) CreateAdminKey(ctx context.Context, name string, scopes []domain.AdminScope, e domain.AuditEntry) (domain.AdminKey, string, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if err := checkName("name", name, true); err != nil {
		return domain.AdminKey{}, "", err
	}
	if len(scopes) == 0 {
		return domain.AdminKey{}, "", domain.InvalidParam("scopes", "an admin key needs at least one scope: read or write")
	}
	secret, err := domain.NewAdminKeySecret()
	if err != nil {
		return domain.AdminKey{}, "", domain.Wrap(domain.KindInternal, err, "cannot make a key secret")
	}
	key := domain.AdminKey{ID: "adm_" + strings.ToLower(rand.Text()), Name: name, Scopes: scopes}
	err = pgkit.WithTx(ctx, s.db, "store the admin key", func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO tidygate_admin_keys (id, key_hash, name, scopes)
			VALUES ($1, $2, $3, $4) RETURNING created_at`, key.ID, domain.HashKey(secret), name, scopeStrings(scopes)).
			Scan(&key.CreatedAt); err != nil {
			return err
		}
		key.CreatedAt = key.CreatedAt.UTC()
		e.Target, e.After = key.ID, &key
		return appendAudit(ctx, tx, e)
	})
	if err != nil {
		return domain.AdminKey{}, "", err
	}
	return key, secret, nil
}

// AdminKeyByHash returns the active admin key with this hash (domain.HashKey
// of its secret), or a domain.KindUnauthenticated error.
func (s *KeyStore) AdminKeyByHash(ctx context.Context, hash string) (domain.AdminKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	invalid := &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_admin_key", Message: "invalid admin key"}
	if checkName("key", hash, true) != nil {
		return domain.AdminKey{}, invalid
	}
	var key domain.AdminKey
	var stored string
	var scopes []string
	err := pgkit.WithConn(ctx, s.db, "look up the admin key", func(conn *pgxpool.Conn) error {
		err := conn.QueryRow(ctx, `SELECT id, key_hash, name, scopes, created_at FROM tidygate_admin_keys
			WHERE key_hash = $1 AND revoked_at IS NULL`, hash).Scan(&key.ID, &stored, &key.Name, &scopes, &key.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid
		}
		return err
	})
	if err != nil {
		return domain.AdminKey{}, err
	}
	if !domain.HashesEqual(stored, hash) {
		return domain.AdminKey{}, invalid
	}
	for _, sc := range scopes {
		key.Scopes = append(key.Scopes, domain.AdminScope(sc))
	}
	key.CreatedAt = key.CreatedAt.UTC()
	return key, nil
}

func scopeStrings(scopes []domain.AdminScope) []string {
	out := make([]string, len(scopes))
	for i, sc := range scopes {
		out[i] = string(sc)
	}
	return out
}

// appendAudit stores e in the audit log inside the change's transaction, so
// that a change and its entry are committed together or not at all. A
// change that left its target as it was (the same audited state before and
// after: a revoked key revoked again, an update to the values it had, a
// budget removed that did not exist) did not happen, and has no entry.
func appendAudit(ctx context.Context, tx pgx.Tx, e domain.AuditEntry) error {
	if strings.TrimSpace(e.Reason) == "" {
		return domain.InvalidParam("audit_reason", "an administrative change needs a reason")
	}
	before, err := snapshotJSON(e.Before)
	if err != nil {
		return err
	}
	after, err := snapshotJSON(e.After)
	if err != nil {
		return err
	}
	if before != nil && bytes.Equal(before, after) {
		return nil
	}
	var at *time.Time // zero: the database's clock
	if !e.At.IsZero() {
		at = &e.At
	}
	_, err = tx.Exec(ctx, `INSERT INTO tidygate_audit_log (at, actor_kind, actor_id, action, target, reason, before, after)
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8)`, at, string(e.Actor.Kind), e.Actor.ID, e.Action, e.Target, e.Reason, before, after)
	return err
}

// Audit returns the audit entries q selects, newest first, each with the
// MLflow trace it was exported as, if it has been.
func (s *KeyStore) Audit(ctx context.Context, q domain.AuditQuery) ([]domain.AuditEntry, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var entries []domain.AuditEntry
	err := pgkit.WithConn(ctx, s.db, "read the audit log", func(conn *pgxpool.Conn) error {
		var err error
		entries, err = queryAudit(ctx, conn, selectAudit+`
			WHERE ($1 = '' OR a.target = $1) AND ($2 = '' OR a.action = $2) AND ($3 <= 0 OR a.id < $3)
			ORDER BY a.id DESC LIMIT $4`, q.Target, q.Action, q.BeforeID, q.Limit)
		return err
	})
	return entries, err
}

// ExportAudit claims up to limit audit entries not yet exported, oldest
// first, and hands them to export; when export succeeds it records each as
// exported with its trace ID (domain.AuditTraceID), in the transaction that
// claimed them, and returns how many it exported. The entries stay locked
// while export runs and an entry another exporter holds is skipped, so that
// replicas exporting at once never export one entry twice; when export
// fails, nothing is recorded and the entries are claimed again later.
// ExportAudit applies no deadline of its own: give ctx one.
func (s *KeyStore) ExportAudit(ctx context.Context, limit int, export func(context.Context, []domain.AuditEntry) error) (int, error) {
	// Nearly every poll finds nothing: one statement, outside a transaction,
	// says so in one round trip, so that an idle poll holds a connection for
	// no longer than that (over a slow link, three round trips each second
	// kept a warm connection from the calls).
	var pending bool
	err := pgkit.WithConn(ctx, s.db, "look for audit entries to export", func(conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tidygate_audit_log a
			WHERE NOT EXISTS (SELECT 1 FROM tidygate_audit_exports x WHERE x.audit_id = a.id))`).Scan(&pending)
	})
	if err != nil || !pending {
		return 0, err
	}
	var n int
	// export's failure is its own, not this database's: it passes the
	// classification by, so that the pool does not take it for its own.
	var exportErr error
	err = pgkit.WithTx(ctx, s.db, "export the audit log", func(tx pgx.Tx) error {
		// The claim locks entries that no export row named when it began;
		// the second statement sees the exports that committed meanwhile
		// and leaves out their entries.
		var claimed []int64
		rows, err := tx.Query(ctx, `SELECT a.id FROM tidygate_audit_log a
			WHERE NOT EXISTS (SELECT 1 FROM tidygate_audit_exports x WHERE x.audit_id = a.id)
			ORDER BY a.id LIMIT $1 FOR UPDATE OF a SKIP LOCKED`, limit)
		if err == nil {
			claimed, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		}
		if err != nil || len(claimed) == 0 {
			return err
		}
		entries, err := queryAudit(ctx, tx, selectAudit+" WHERE a.id = ANY($1) AND x.audit_id IS NULL ORDER BY a.id", claimed)
		if err != nil || len(entries) == 0 {
			return err
		}
		if exportErr = export(ctx, entries); exportErr != nil {
			return errExportFailed
		}
		ids, traces := make([]int64, len(entries)), make([]string, len(entries))
		for i, e := range entries {
			ids[i], traces[i] = e.ID, domain.AuditTraceID(e)
		}
		_, err = tx.Exec(ctx, `INSERT INTO tidygate_audit_exports (audit_id, trace_id)
			SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT (audit_id) DO NOTHING`, ids, traces)
		n = len(entries)
		return err
	})
	if exportErr != nil {
		return 0, exportErr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// RefuseAudit records that MLflow's database refused the trace of the audit
// entry id, for reason: no exporter claims the entry again, and the audit
// log shows the reason in place of a trace. An entry exported or refused
// already is left as it is.
func (s *KeyStore) RefuseAudit(ctx context.Context, id int64, reason string) error {
	return pgkit.WithConn(ctx, s.db, "record a refused audit export", func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, `INSERT INTO tidygate_audit_exports (audit_id, refused) VALUES ($1, $2)
			ON CONFLICT (audit_id) DO NOTHING`, id, cmp.Or(reason, "refused"))
		return err
	})
}

// errExportFailed rolls back ExportAudit's transaction when export fails.
var errExportFailed = domain.Errorf(domain.KindInternal, "the audit export failed")

// selectAudit reads audit entries (a) with their export (x); a query
// appends its conditions.
const selectAudit = `SELECT a.id, a.at, a.actor_kind, a.actor_id, a.action, a.target, a.reason, a.before, a.after,
	coalesce(a.trace_key, ''), coalesce(x.trace_id, ''), coalesce(x.refused, '')
	FROM tidygate_audit_log a LEFT JOIN tidygate_audit_exports x ON x.audit_id = a.id`

// queryAudit runs a query built on selectAudit.
func queryAudit(ctx context.Context, q querier, sql string, args ...any) ([]domain.AuditEntry, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var entries []domain.AuditEntry
	for rows.Next() {
		var e domain.AuditEntry
		var kind string
		var before, after []byte
		if err := rows.Scan(&e.ID, &e.At, &kind, &e.Actor.ID, &e.Action, &e.Target, &e.Reason, &before, &after, &e.TraceKey, &e.TraceID, &e.ExportRefused); err != nil {
			return nil, err
		}
		e.Actor.Kind, e.At = domain.ActorKind(kind), e.At.UTC()
		if e.Before, err = parseSnapshot(before); err != nil {
			return nil, err
		}
		if e.After, err = parseSnapshot(after); err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, rows.Err()
}

// snapshot is the stored JSON form of an audited target's state: an API
// key, an admin key (never its secret or its hash), or a user's or team's
// budgets.
type snapshot struct {
	Kind          string       `json:"kind"` // "api_key", "admin_key", "user" or "team"
	ID            string       `json:"id"`
	User          string       `json:"user,omitempty"`
	Team          string       `json:"team,omitempty"`
	AllowedModels []string     `json:"allowed_models,omitempty"`
	RPM           int          `json:"rpm,omitempty"`
	TPM           int          `json:"tpm,omitempty"`
	MaxConcurrent int          `json:"max_concurrent,omitempty"`
	UserLimits    *limitsSnap  `json:"user_limits,omitempty"`
	TeamLimits    *limitsSnap  `json:"team_limits,omitempty"`
	Limits        *limitsSnap  `json:"limits,omitempty"` // a user's or team's own (kinds "limits", "user", "team")
	Scope         string       `json:"scope,omitempty"`
	Budgets       []budgetSnap `json:"budgets,omitempty"`
	Name          string       `json:"name,omitempty"`
	Scopes        []string     `json:"scopes,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	RevokedAt     *time.Time   `json:"revoked_at,omitempty"`
	ExpiresAt     *time.Time   `json:"expires_at,omitempty"`
	RotatedAt     *time.Time   `json:"rotated_at,omitempty"`
	GraceUntil    *time.Time   `json:"previous_valid_until,omitempty"`
}

type limitsSnap struct {
	RPM           int `json:"rpm,omitempty"`
	TPM           int `json:"tpm,omitempty"`
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// snapLimits is l's stored form; nil when l limits nothing.
func snapLimits(l domain.Limits) *limitsSnap {
	if l == (domain.Limits{}) {
		return nil
	}
	return &limitsSnap{RPM: l.RPM, TPM: l.TPM, MaxConcurrent: l.MaxConcurrent}
}

// limits is the domain form of a stored snapshot's limits.
func (l *limitsSnap) limits() domain.Limits {
	if l == nil {
		return domain.Limits{}
	}
	return domain.Limits{RPM: l.RPM, TPM: l.TPM, MaxConcurrent: l.MaxConcurrent}
}

type budgetSnap struct {
	Scope       string `json:"scope"`
	ScopeID     string `json:"scope_id"`
	Period      string `json:"period"`
	LimitMicros int64  `json:"limit_micros"`
	Model       string `json:"model,omitempty"`
}

// snapshotJSON encodes an audited state; nil stays SQL NULL.
func snapshotJSON(v any) ([]byte, error) {
	var s snapshot
	switch t := v.(type) {
	case nil:
		return nil, nil
	case *domain.APIKey:
		s = snapshot{Kind: "api_key", ID: t.ID, User: t.Caller.User, Team: t.Caller.Team,
			AllowedModels: t.Caller.AllowedModels, RPM: t.Caller.RPM, TPM: t.Caller.TPM, MaxConcurrent: t.Caller.MaxConcurrent, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt,
			RotatedAt: t.RotatedAt, GraceUntil: t.PreviousValidUntil,
			UserLimits: snapLimits(t.Caller.UserLimits), TeamLimits: snapLimits(t.Caller.TeamLimits)}
		if !t.Caller.KeyExpiresAt.IsZero() {
			s.ExpiresAt = &t.Caller.KeyExpiresAt
		}
		s.Budgets = snapBudgets(t.Caller.Budgets)
	case *domain.LimitsOf:
		s = snapshot{Kind: "limits", Scope: string(t.Scope), ID: t.ID, Limits: snapLimits(t.Limits)}
	case *domain.AdminKey:
		s = snapshot{Kind: "admin_key", ID: t.ID, Name: t.Name, Scopes: scopeStrings(t.Scopes), CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
	case *domain.Principal:
		s = snapshot{Kind: string(t.Scope), ID: t.ID, Budgets: snapBudgets(t.Budgets), Limits: snapLimits(t.Limits)}
	default:
		return nil, domain.Errorf(domain.KindInternal, "cannot audit a %T", v)
	}
	return json.Marshal(s)
}

// parseSnapshot decodes what snapshotJSON stored.
func parseSnapshot(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, domain.Wrap(domain.KindInternal, err, "cannot read an audit entry")
	}
	switch s.Kind {
	case string(domain.ScopeUser), string(domain.ScopeTeam):
		p := &domain.Principal{Scope: domain.ScopeKind(s.Kind), ID: s.ID, Limits: s.Limits.limits()}
		for _, b := range s.Budgets {
			p.Budgets = append(p.Budgets, b.budget())
		}
		return p, nil
	case "limits":
		return &domain.LimitsOf{Scope: domain.LimitScope(s.Scope), ID: s.ID, Limits: s.Limits.limits()}, nil
	case "admin_key":
		k := &domain.AdminKey{ID: s.ID, Name: s.Name, CreatedAt: s.CreatedAt.UTC(), RevokedAt: s.RevokedAt}
		for _, sc := range s.Scopes {
			k.Scopes = append(k.Scopes, domain.AdminScope(sc))
		}
		return k, nil
	}
	k := &domain.APIKey{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), RevokedAt: s.RevokedAt, RotatedAt: s.RotatedAt, PreviousValidUntil: s.GraceUntil,
		Caller: domain.Caller{KeyID: s.ID, User: s.User, Team: s.Team, AllowedModels: s.AllowedModels, RPM: s.RPM, TPM: s.TPM, MaxConcurrent: s.MaxConcurrent,
			UserLimits: s.UserLimits.limits(), TeamLimits: s.TeamLimits.limits()}}
	if s.ExpiresAt != nil {
		k.Caller.KeyExpiresAt = s.ExpiresAt.UTC()
	}
	for _, b := range s.Budgets {
		k.Caller.Budgets = append(k.Caller.Budgets, b.budget())
	}
	return k, nil
}

// snapBudgets converts budgets to their stored form.
func snapBudgets(budgets []domain.Budget) []budgetSnap {
	var out []budgetSnap
	for _, b := range budgets {
		out = append(out, budgetSnap{Scope: string(b.Scope), ScopeID: b.ScopeID, Period: string(b.Period), LimitMicros: int64(b.Limit), Model: b.Model})
	}
	return out
}

// budget converts a stored budget back.
func (b budgetSnap) budget() domain.Budget {
	return domain.Budget{Scope: domain.ScopeKind(b.Scope), ScopeID: b.ScopeID, Period: domain.Period(b.Period), Limit: domain.Micros(b.LimitMicros), Model: b.Model}
}
