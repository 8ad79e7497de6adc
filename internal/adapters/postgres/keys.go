package postgres

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.KeyStore = (*KeyStore)(nil)

// KeyStore keeps API keys and the budgets of their users and teams. It
// caches nothing: a revoked key fails on the next call on every replica
// (KeyCache, in front of it, answers from memory instead).
// It notes when each key authenticates a call and writes those times in
// batches (FlushLastUsed), never once per call.
type KeyStore struct {
	db  Conns
	now func() time.Time

	mu   sync.Mutex
	used map[string]time.Time // key ID → last use not yet written

	// changed, when a KeyCache is attached, hears of each change made
	// through this store as soon as it commits (a scope as in the
	// notifications of KeyChannel), so that the replica that made it never
	// serves what it replaced; the others hear of it through KeyChannel.
	changed func(scope string)
}

// announce tells an attached KeyCache of committed changes to scopes.
func (s *KeyStore) announce(scopes ...string) {
	if s.changed == nil {
		return
	}
	for _, sc := range scopes {
		s.changed(sc)
	}
}

// NewKeyStore returns a key store on db's tables (see Migrate).
func NewKeyStore(db Conns) *KeyStore {
	return &KeyStore{db: db, now: time.Now, used: map[string]time.Time{}}
}

// NewKey is domain.NewKey, kept under this name for the store's callers.
type NewKey = domain.NewKey

// checkNewKey returns a domain.KindInvalid error naming the first field of nk
// that cannot be stored.
func checkNewKey(nk NewKey) error {
	if err := checkName("user", nk.User, true); err != nil {
		return err
	}
	if err := checkName("team", nk.Team, true); err != nil {
		return err
	}
	for _, m := range nk.AllowedModels {
		if err := checkName("allowed_models", m, true); err != nil {
			return err
		}
	}
	if nk.RPM < 0 || nk.RPM > maxInt32 {
		return domain.InvalidParam("rpm", "rpm must be between 0 and %d", maxInt32)
	}
	if nk.TPM < 0 || nk.TPM > maxInt32 {
		return domain.InvalidParam("tpm", "tpm must be between 0 and %d", maxInt32)
	}
	if nk.MaxConcurrent < 0 || nk.MaxConcurrent > maxInt32 {
		return domain.InvalidParam("max_concurrent", "max_concurrent must be between 0 and %d", maxInt32)
	}
	if err := checkLimits("user_limits", nk.UserLimits); err != nil {
		return err
	}
	if err := checkLimits("team_limits", nk.TeamLimits); err != nil {
		return err
	}
	for _, b := range nk.Budgets() {
		if b.Limit < 0 {
			return domain.InvalidParam("budget", "%s must not be negative", b)
		}
		if b.Limit > 0 {
			if err := b.Validate(); err != nil {
				return err
			}
		}
		if err := checkName("budget", b.Model, false); err != nil {
			return err
		}
	}
	return nil
}

// maxInt32 is the largest rpm, tpm or max_concurrent the integer columns
// hold.
const maxInt32 = 1<<31 - 1

// Create stores a new key and sets the budgets nk names. It returns the key
// and its secret, which is not stored and cannot be shown again.
func (s *KeyStore) Create(ctx context.Context, nk NewKey) (domain.APIKey, string, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if err := checkNewKey(nk); err != nil {
		return domain.APIKey{}, "", err
	}
	secret, err := domain.NewKeySecret()
	if err != nil {
		return domain.APIKey{}, "", domain.Wrap(domain.KindInternal, err, "cannot make a key secret")
	}
	key, created, err := s.insert(ctx, secret, nk)
	if err == nil && !created { // two equal 256-bit secrets: never, short of a broken random source
		err = domain.Errorf(domain.KindInternal, "cannot create the API key: its secret is already in use")
	}
	if err != nil {
		return domain.APIKey{}, "", err
	}
	return key, secret, nil
}

// EnsureKey stores a key with a known secret, such as the documented
// development key, as Create would. When a key with this secret exists it
// returns that key as stored (revoked or not) and changes nothing, so that
// replicas starting together may all call it.
func (s *KeyStore) EnsureKey(ctx context.Context, secret string, nk NewKey) (domain.APIKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if !domain.LooksLikeKey(secret) {
		return domain.APIKey{}, domain.InvalidParam("secret", "the secret does not have the shape of a tidygate key (%s…)", domain.KeyPrefix)
	}
	if err := checkNewKey(nk); err != nil {
		return domain.APIKey{}, err
	}
	key, _, err := s.insert(ctx, secret, nk)
	return key, err
}

const insertKey = `INSERT INTO tidygate_api_keys (id, key_hash, user_id, team_id, allowed_models, rpm, tpm, max_concurrent, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (key_hash) DO NOTHING`

const upsertBudget = `INSERT INTO tidygate_budgets (scope_kind, scope_id, period, limit_micros)
VALUES ($1, $2, $3, $4)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET limit_micros = EXCLUDED.limit_micros`

// upsertBudgetLimit sets a budget of a shape earlier releases do not know
// (see domain.Budget.Legacy), in the table they never read.
const upsertBudgetLimit = `INSERT INTO tidygate_budget_limits (scope_kind, scope_id, period, model, limit_micros)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (scope_kind, scope_id, period, model) DO UPDATE SET limit_micros = EXCLUDED.limit_micros`

// queueBudget queues setting b, in the table its shape belongs in.
func queueBudget(batch *pgx.Batch, b domain.Budget) {
	if b.Legacy() {
		batch.Queue(upsertBudget, string(b.Scope), b.ScopeID, string(b.Period), int64(b.Limit))
		return
	}
	batch.Queue(upsertBudgetLimit, string(b.Scope), b.ScopeID, string(b.Period), b.Model, int64(b.Limit))
}

// insert stores the key unless one with the same secret exists, sets nk's
// budgets when it stored the key, and returns the stored key and whether it
// was created now.
func (s *KeyStore) insert(ctx context.Context, secret string, nk NewKey) (domain.APIKey, bool, error) {
	var key domain.APIKey
	var created bool
	err := pgkit.WithTx(ctx, s.db, "store the API key", func(tx pgx.Tx) error {
		var err error
		key, created, err = insertKeyTx(ctx, tx, domain.HashKey(secret), nk)
		return err
	})
	if err == nil && created { // its budgets may have changed those of its user's and team's other keys
		s.announce(scopeOf(domain.ScopeUser, nk.User), scopeOf(domain.ScopeTeam, nk.Team))
	}
	return key, created, err
}

// insertKeyTx is insert inside the transaction tx.
func insertKeyTx(ctx context.Context, tx pgx.Tx, hash string, nk NewKey) (domain.APIKey, bool, error) {
	models := nk.AllowedModels
	if models == nil {
		models = []string{}
	}
	id := newKeyID()
	var expires *time.Time
	if !nk.ExpiresAt.IsZero() {
		expires = &nk.ExpiresAt
	}
	tag, err := tx.Exec(ctx, insertKey, id, hash, nk.User, nk.Team, models, nk.RPM, nk.TPM, nk.MaxConcurrent, expires)
	if err != nil {
		return domain.APIKey{}, false, err
	}
	created := tag.RowsAffected() == 1
	if created {
		b := &pgx.Batch{}
		for _, bud := range nk.Budgets() {
			if bud.Scope == domain.ScopeKey {
				bud.ScopeID = id
			}
			if bud.Limit > 0 {
				queueBudget(b, bud)
			}
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return domain.APIKey{}, false, err
			}
		}
		for _, l := range []domain.LimitsOf{{Scope: domain.LimitUser, ID: nk.User, Limits: nk.UserLimits},
			{Scope: domain.LimitTeam, ID: nk.Team, Limits: nk.TeamLimits}} {
			if l.Limits == (domain.Limits{}) {
				continue
			}
			if _, _, err := changeLimitsTx(ctx, tx, l.Scope, l.ID, l.Limits.Over); err != nil {
				return domain.APIKey{}, false, err
			}
		}
	}
	keys, err := queryKeys(ctx, tx, selectKeys+" WHERE k.key_hash = $1 ORDER BY k.id", hash)
	if err != nil {
		return domain.APIKey{}, false, err
	}
	if len(keys) != 1 {
		return domain.APIKey{}, false, domain.Errorf(domain.KindInternal, "cannot read back the stored API key")
	}
	return keys[0].key, created, nil
}

// newKeyID returns a fresh key ID such as "key_mzr5…": 128 random bits.
func newKeyID() string {
	return "key_" + strings.ToLower(rand.Text())
}

// List returns every key, revoked ones included, oldest first.
func (s *KeyStore) List(ctx context.Context) ([]domain.APIKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var keys []storedKey
	err := pgkit.WithConn(ctx, s.db, "list the API keys", func(conn *pgxpool.Conn) error {
		var err error
		keys, err = queryKeys(ctx, conn, selectKeys+" ORDER BY k.created_at, k.id")
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiKeys(keys), nil
}

// apiKeys returns the keys of stored.
func apiKeys(stored []storedKey) []domain.APIKey {
	list := make([]domain.APIKey, len(stored))
	for i, k := range stored {
		list[i] = k.key
	}
	return list
}

// Revoke revokes the key with this ID at once, on every replica. Revoking a
// revoked key changes nothing; an unknown ID is a domain.KindNotFound error.
func (s *KeyStore) Revoke(ctx context.Context, id string) error {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	err := pgkit.WithConn(ctx, s.db, "revoke the API key", func(conn *pgxpool.Conn) error {
		tag, err := conn.Exec(ctx, "UPDATE tidygate_api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return keyNotFound(id)
		}
		return nil
	})
	if err == nil {
		s.announce(scopeOf(domain.ScopeKey, id))
	}
	return err
}

// CallerByKeyHash returns the caller behind the active key with this hash,
// with the budgets of its user and team, or a domain.KindUnauthenticated
// error for an unknown, revoked or expired key. The secret a rotation
// replaced is accepted until the rotation's grace period ends.
func (s *KeyStore) CallerByKeyHash(ctx context.Context, hash string) (domain.Caller, error) {
	k, err := s.lookup(ctx, hash)
	if err != nil {
		return domain.Caller{}, err
	}
	return s.admit(k, hash, s.now())
}

// invalidKey is the error for a key that is unknown or revoked, or a
// replaced secret whose grace period has ended.
func invalidKey() error {
	return &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key", Message: "invalid API key"}
}

// lookup reads the unrevoked key whose current or replaced secret has this
// hash, or returns invalidKey. Whether it may be used now is admit's to say.
func (s *KeyStore) lookup(ctx context.Context, hash string) (storedKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if checkName("key", hash, true) != nil { // no stored hash looks like this
		return storedKey{}, invalidKey()
	}
	var keys []storedKey
	err := pgkit.WithConn(ctx, s.db, "look up the API key", func(conn *pgxpool.Conn) error {
		var err error
		keys, err = queryKeys(ctx, conn, selectKeys+" WHERE (k.key_hash = $1 OR k.previous_key_hash = $1) AND k.revoked_at IS NULL ORDER BY k.id", hash)
		return err
	})
	if err != nil {
		return storedKey{}, err
	}
	if len(keys) != 1 {
		return storedKey{}, invalidKey()
	}
	return keys[0], nil
}

// admit returns k's caller when the secret with this hash may authenticate
// a call at now (it is k's current secret, or its replaced one within the
// grace period, and k has not expired), and notes the use for
// FlushLastUsed. The uncached lookup and the cache both decide through it,
// at each use.
func (s *KeyStore) admit(k storedKey, hash string, now time.Time) (domain.Caller, error) {
	if !k.accepts(hash, now) {
		return domain.Caller{}, invalidKey()
	}
	c := k.key.Caller
	if err := c.CheckKeyActive(now); err != nil {
		return domain.Caller{}, err
	}
	s.noteUse(c.KeyID, now)
	return c, nil
}

// accepts reports whether hash is k's current secret, or the secret its
// last rotation replaced while that rotation's grace period lasts.
func (k storedKey) accepts(hash string, now time.Time) bool {
	if domain.HashesEqual(k.hash, hash) {
		return true
	}
	grace := k.key.PreviousValidUntil
	return k.previousHash != "" && domain.HashesEqual(k.previousHash, hash) && grace != nil && now.Before(*grace)
}

// noteUse remembers that key id authenticated a call at t, for the next
// FlushLastUsed.
func (s *KeyStore) noteUse(id string, t time.Time) {
	s.mu.Lock()
	if t.After(s.used[id]) {
		s.used[id] = t
	}
	s.mu.Unlock()
}

// FlushLastUsed writes the last-used times noted since the previous flush
// in one statement, never moving a key's time backwards (another replica may
// have written a later one). On failure the times are kept for the next
// flush, unless a newer use replaced them.
func (s *KeyStore) FlushLastUsed(ctx context.Context) error {
	s.mu.Lock()
	batch := s.used
	s.used = map[string]time.Time{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, 0, len(batch))
	times := make([]time.Time, 0, len(batch))
	for id, t := range batch {
		ids, times = append(ids, id), append(times, t)
	}
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	err := pgkit.WithConn(ctx, s.db, "write the keys' last-used times", func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, `UPDATE tidygate_api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
			FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`, ids, times)
		return err
	})
	if err != nil {
		for id, t := range batch {
			s.noteUse(id, t)
		}
	}
	return err
}

// standingColumns and standingJoins are how a key and a signed-in caller
// alike find their user's and team's standing, written once: joined to a
// row p with user_id and team_id columns, the limits of that user (ul)
// and team (tl) and, one row each, the budgets of both from both budget
// tables (b), or one row with NULL budget columns when there is none;
// moreBudgets widens b's condition (a key's own budgets).
const standingColumns = `coalesce(ul.rpm, 0), coalesce(ul.tpm, 0), coalesce(ul.max_concurrent, 0),
	coalesce(tl.rpm, 0), coalesce(tl.tpm, 0), coalesce(tl.max_concurrent, 0),
	b.scope_kind, b.scope_id, b.period, b.limit_micros, b.model`

func standingJoins(p, moreBudgets string) string {
	return `
LEFT JOIN tidygate_rate_limits ul ON ul.scope_kind = 'user' AND ul.scope_id = ` + p + `.user_id
LEFT JOIN tidygate_rate_limits tl ON tl.scope_kind = 'team' AND tl.scope_id = ` + p + `.team_id
LEFT JOIN (
	SELECT scope_kind, scope_id, period, limit_micros, '' AS model FROM tidygate_budgets
	UNION ALL
	SELECT scope_kind, scope_id, period, limit_micros, model FROM tidygate_budget_limits
) b
	ON (b.scope_kind = 'user' AND b.scope_id = ` + p + `.user_id) OR (b.scope_kind = 'team' AND b.scope_id = ` + p + `.team_id)` + moreBudgets
}

// selectKeys reads keys with their users' and teams' standing and their
// own budgets: one row per key and budget, or one row with NULL budget
// columns for a key without any. Callers append a WHERE clause and an
// ORDER BY that keeps each key's rows together.
var selectKeys = `SELECT k.id, k.key_hash, k.user_id, k.team_id, k.allowed_models, k.rpm, k.tpm, k.max_concurrent,
	k.created_at, k.revoked_at, k.expires_at, k.rotated_at, coalesce(k.previous_key_hash, ''), k.previous_valid_until, k.last_used_at,
	` + standingColumns + `
FROM tidygate_api_keys k` + standingJoins("k", `
	OR (b.scope_kind = 'key' AND b.scope_id = k.id)`)

// selectStanding reads the standing of the user $1 and the team $2, in
// selectKeys' columns and rows.
var selectStanding = `SELECT ` + standingColumns + `
FROM (VALUES ($1::text, $2::text)) AS p(user_id, team_id)` + standingJoins("p", "")

// keyRow is one row of selectKeys.
type keyRow struct {
	id, hash, user, team string
	allowedModels        []string
	rpm, tpm, concurrent int32
	createdAt            time.Time
	revokedAt, expiresAt *time.Time
	rotatedAt, graceEnd  *time.Time
	previousHash         string
	lastUsedAt           *time.Time
	standing             standingRow
}

// standingRow is the standing columns of a row (standingColumns).
type standingRow struct {
	userLimits, teamLimits [3]int32 // the user's and the team's rpm, tpm, max_concurrent
	scope, scopeID         *string
	period                 *string
	limit                  *int64
	model                  *string
}

// targets are where Scan puts the standing columns.
func (r *standingRow) targets() []any {
	return []any{&r.userLimits[0], &r.userLimits[1], &r.userLimits[2], &r.teamLimits[0], &r.teamLimits[1], &r.teamLimits[2],
		&r.scope, &r.scopeID, &r.period, &r.limit, &r.model}
}

// budget returns the row's budget, if it has one.
func (r *standingRow) budget() (domain.Budget, bool) {
	if r.scope == nil {
		return domain.Budget{}, false
	}
	return domain.Budget{Scope: domain.ScopeKind(*r.scope), ScopeID: *r.scopeID,
		Period: domain.Period(*r.period), Limit: domain.Micros(*r.limit), Model: *r.model}, true
}

// storedKey is a key as read back, with the hash it is stored under.
type storedKey struct {
	key                domain.APIKey
	hash, previousHash string
}

// querier runs a query on a connection or in a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryKeys runs a selectKeys query and folds each key's rows into one key
// whose budgets are in budgetOrder.
func queryKeys(ctx context.Context, q querier, sql string, args ...any) ([]storedKey, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []storedKey
	for rows.Next() {
		var r keyRow
		if err := rows.Scan(append([]any{&r.id, &r.hash, &r.user, &r.team, &r.allowedModels, &r.rpm, &r.tpm, &r.concurrent,
			&r.createdAt, &r.revokedAt, &r.expiresAt, &r.rotatedAt, &r.previousHash, &r.graceEnd, &r.lastUsedAt},
			r.standing.targets()...)...); err != nil {
			return nil, err
		}
		if len(keys) == 0 || keys[len(keys)-1].key.ID != r.id {
			keys = append(keys, r.storedKey())
		}
		if b, ok := r.standing.budget(); ok {
			c := &keys[len(keys)-1].key.Caller
			c.Budgets = append(c.Budgets, b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range keys {
		slices.SortFunc(keys[i].key.Caller.Budgets, budgetOrder)
	}
	return keys, nil
}

// storedKey converts the key columns of r, without its budget.
func (r keyRow) storedKey() storedKey {
	var models []string
	if len(r.allowedModels) > 0 {
		models = r.allowedModels
	}
	var expires time.Time
	if r.expiresAt != nil {
		expires = r.expiresAt.UTC()
	}
	return storedKey{hash: r.hash, previousHash: r.previousHash, key: domain.APIKey{
		ID:                 r.id,
		CreatedAt:          r.createdAt.UTC(),
		RevokedAt:          utc(r.revokedAt),
		RotatedAt:          utc(r.rotatedAt),
		PreviousValidUntil: utc(r.graceEnd),
		LastUsedAt:         utc(r.lastUsedAt),
		Caller: domain.Caller{KeyID: r.id, User: r.user, Team: r.team, AllowedModels: models,
			RPM: int(r.rpm), TPM: int(r.tpm), MaxConcurrent: int(r.concurrent), KeyExpiresAt: expires,
			UserLimits: limitsRow(r.standing.userLimits), TeamLimits: limitsRow(r.standing.teamLimits)},
	}}
}

// limitsRow converts a row's rpm, tpm and max_concurrent.
func limitsRow(l [3]int32) domain.Limits {
	return domain.Limits{RPM: int(l[0]), TPM: int(l[1]), MaxConcurrent: int(l[2])}
}

// utc returns *t in UTC, or nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

var _ ports.StandingBook = (*KeyStore)(nil)

// StandingOf returns the budgets of user and of team, from both budget
// tables, in budgetOrder, and their limits: read as a key's are
// (standingJoins), in one query.
func (s *KeyStore) StandingOf(ctx context.Context, user, team string) (domain.Standing, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var st domain.Standing
	err := pgkit.WithConn(ctx, s.db, "read the user's and team's budgets and limits", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, selectStanding, user, team)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r standingRow
			if err := rows.Scan(r.targets()...); err != nil {
				return err
			}
			st.UserLimits, st.TeamLimits = limitsRow(r.userLimits), limitsRow(r.teamLimits)
			if b, ok := r.budget(); ok {
				st.Budgets = append(st.Budgets, b)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return domain.Standing{}, err
	}
	slices.SortFunc(st.Budgets, budgetOrder)
	return st, nil
}
