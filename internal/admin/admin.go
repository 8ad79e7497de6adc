// Package admin is the application service for key administration: the one
// way in for the tidygate keys and admin-keys commands and the admin API. It
// checks what the actor may do and that the change has a reason, and hands
// the change to the store together with its audit entry, which the store
// commits in the change's own transaction: no change without its entry.
package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// KeyAdmin is the key store as administration needs it. Each change method
// stores the change and the audit entry it is given (completed with the
// target and its state before and after) in one transaction.
type KeyAdmin interface {
	CreateKey(ctx context.Context, nk domain.NewKey, e domain.AuditEntry) (domain.APIKey, string, error)
	RevokeKey(ctx context.Context, id, ifMatch string, e domain.AuditEntry) (domain.APIKey, error)
	RotateKey(ctx context.Context, id string, grace time.Duration, ifMatch string, e domain.AuditEntry) (domain.APIKey, string, error)
	SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time, ifMatch string, e domain.AuditEntry) (domain.APIKey, error)
	UpdateKey(ctx context.Context, id string, u domain.KeyUpdate, ifMatch string, e domain.AuditEntry) (domain.APIKey, error)
	SetLimits(ctx context.Context, scope domain.LimitScope, id string, l domain.Limits, e domain.AuditEntry) (domain.Limits, error)
	Limits(ctx context.Context, scope domain.LimitScope, id string) (domain.Limits, error)
	List(ctx context.Context) ([]domain.APIKey, error)
	Keys(ctx context.Context, q domain.KeyQuery) ([]domain.APIKey, error)
	Key(ctx context.Context, id string) (domain.APIKey, error)
	CreateAdminKey(ctx context.Context, name string, scopes []domain.AdminScope, e domain.AuditEntry) (domain.AdminKey, string, error)
	RevokeAdminKey(ctx context.Context, id string, e domain.AuditEntry) (domain.AdminKey, error)
	AdminKeys(ctx context.Context) ([]domain.AdminKey, error)
	AdminKey(ctx context.Context, id string) (domain.AdminKey, error)
	AdminKeyByHash(ctx context.Context, hash string) (domain.AdminKey, error)
	Principals(ctx context.Context, q domain.PrincipalQuery) ([]domain.Principal, error)
	Principal(ctx context.Context, scope domain.ScopeKind, id string) (domain.Principal, error)
	ChangePrincipal(ctx context.Context, scope domain.ScopeKind, id string, c domain.PrincipalChange, ifMatch string, e domain.AuditEntry) (domain.Principal, error)
	UsageReport(ctx context.Context, q domain.UsageQuery) ([]domain.UsageLine, error)
	Audit(ctx context.Context, q domain.AuditQuery) ([]domain.AuditEntry, error)
}

// Tokens verifies bearer tokens of the corporate identity provider.
type Tokens interface {
	// VerifyToken returns the identity a valid token names, a
	// domain.KindUnauthenticated error for any other token, or a
	// domain.KindUnavailable error while the provider cannot be reached.
	VerifyToken(ctx context.Context, token string) (domain.Identity, error)
}

// Options tune the service.
type Options struct {
	MinReasonLen int              // shortest accepted reason, in visible characters; default 3
	MaxReasonLen int              // longest accepted reason, in characters; default 1000
	Now          func() time.Time // the clock of audit entries; default time.Now
	// Tokens verifies administrators' tokens, and RoleScopes maps their
	// roles to scopes; nil Tokens: tokens are refused.
	Tokens     Tokens
	RoleScopes domain.RoleScopes
	// Models returns the catalogue's models as they are now, whose limits
	// administrators read (they are changed in the catalogue file); nil:
	// there are none to show.
	Models func() []domain.Model
}

// Service administers API keys and admin keys on behalf of an actor.
type Service struct {
	store KeyAdmin
	opts  Options
}

// NewService returns the administration service on store.
func NewService(store KeyAdmin, opts Options) *Service {
	if opts.MinReasonLen <= 0 {
		opts.MinReasonLen = 3
	}
	if opts.MaxReasonLen <= 0 {
		opts.MaxReasonLen = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, opts: opts}
}

// MaxAuditPage is the most audit entries one Audit call returns.
const MaxAuditPage = 500

// CreateKey creates an API key and returns it with its secret, shown once.
func (s *Service) CreateKey(ctx context.Context, a domain.Actor, reason string, nk domain.NewKey) (domain.APIKey, string, error) {
	e, err := s.entry(a, domain.AdminWrite, "key.create", reason)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	nk.AllowedModels = onceEach(nk.AllowedModels)
	if err := s.knownModels("allowed_models", nk.AllowedModels); err != nil {
		return domain.APIKey{}, "", err
	}
	if err := s.knownModels("budgets", domain.BudgetModels(nk.More)); err != nil {
		return domain.APIKey{}, "", err
	}
	have, err := s.standingBudgets(ctx, nk)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	if _, err := domain.CheckReplacedBudgets(have, nk); err != nil {
		return domain.APIKey{}, "", err
	}
	return s.store.CreateKey(ctx, nk, e)
}

// BudgetReplacements returns the budgets of nk's user and team that
// creating nk would give another limit (domain.ReplacedBudgets): CreateKey
// refuses them unless nk.ReplaceBudgets is set, and the store audits a
// replacement as a change of the user or team, with its state before and
// after.
func (s *Service) BudgetReplacements(ctx context.Context, a domain.Actor, nk domain.NewKey) ([]domain.BudgetReplacement, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	have, err := s.standingBudgets(ctx, nk)
	if err != nil {
		return nil, err
	}
	return domain.ReplacedBudgets(have, nk), nil
}

// standingBudgets returns the budgets nk's user and team have now.
func (s *Service) standingBudgets(ctx context.Context, nk domain.NewKey) ([]domain.Budget, error) {
	var have []domain.Budget
	for _, p := range []struct {
		scope domain.ScopeKind
		id    string
	}{{domain.ScopeUser, nk.User}, {domain.ScopeTeam, nk.Team}} {
		if strings.TrimSpace(p.id) == "" {
			continue // refused by the store, naming the field
		}
		pr, err := s.store.Principal(ctx, p.scope, p.id)
		if err != nil {
			return nil, err
		}
		have = append(have, pr.Budgets...)
	}
	return have, nil
}

// onceEach returns names with each name kept once, where it was first
// named: a key's allowed models named twice are allowed once, however the
// key is made or changed.
func onceEach(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if out == nil && names != nil {
		out = []string{} // an empty list stays a list: every model
	}
	return out
}

// knownModels refuses names (of param) that the catalogue in use has no
// model or alias for (domain.UnknownModels). Without Options.Models there
// is nothing to check them against.
func (s *Service) knownModels(param string, names []string) error {
	if s.opts.Models == nil || len(names) == 0 {
		return nil
	}
	if unknown := domain.UnknownModels(s.opts.Models(), names); len(unknown) > 0 {
		return domain.InvalidParam(param, "%s names models that are not in the catalogue: %s", param, strings.Join(unknown, ", "))
	}
	return nil
}

// RevokeKey revokes an API key at once, on every replica. A non-empty
// ifMatch must be the key's current version (domain.KeyVersion).
func (s *Service) RevokeKey(ctx context.Context, a domain.Actor, reason, id, ifMatch string) (domain.APIKey, error) {
	e, err := s.entry(a, domain.AdminWrite, "key.revoke", reason)
	if err != nil {
		return domain.APIKey{}, err
	}
	return s.store.RevokeKey(ctx, id, ifMatch, e)
}

// MaxRotationGrace is the longest grace period a rotation may give the
// replaced secret: long enough to roll a secret out, short enough that a
// leaked secret does not outlive its rotation by long.
const MaxRotationGrace = 30 * 24 * time.Hour

// RotateKey gives an API key a new secret, shown once, and keeps the
// replaced secret working for grace (0: it stops at once), so that clients
// can switch without an outage. The key keeps its ID, policy and budgets.
func (s *Service) RotateKey(ctx context.Context, a domain.Actor, reason, id string, grace time.Duration, ifMatch string) (domain.APIKey, string, error) {
	e, err := s.entry(a, domain.AdminWrite, "key.rotate", reason)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	if grace < 0 || grace > MaxRotationGrace {
		return domain.APIKey{}, "", domain.InvalidParam("grace", "the grace period must be between 0 and %s", MaxRotationGrace)
	}
	return s.store.RotateKey(ctx, id, grace, ifMatch, e)
}

// SetKeyExpiry sets when an API key stops working; the zero time removes
// the expiry. An expiry in the past ends the key at once, like a
// revocation that can be undone.
func (s *Service) SetKeyExpiry(ctx context.Context, a domain.Actor, reason, id string, expiresAt time.Time, ifMatch string) (domain.APIKey, error) {
	e, err := s.entry(a, domain.AdminWrite, "key.set_expiry", reason)
	if err != nil {
		return domain.APIKey{}, err
	}
	return s.store.SetKeyExpiry(ctx, id, expiresAt, ifMatch, e)
}

// SetLimits replaces the rate and concurrency limits of a user or a team
// (scope domain.LimitUser or domain.LimitTeam) by l, a zero field
// removing that limit. Every key of the user or team has them from its
// next call on.
func (s *Service) SetLimits(ctx context.Context, a domain.Actor, reason string, scope domain.LimitScope, id string, l domain.Limits) (domain.Limits, error) {
	e, err := s.entry(a, domain.AdminWrite, "limits.set", reason)
	if err != nil {
		return domain.Limits{}, err
	}
	return s.store.SetLimits(ctx, scope, id, l, e)
}

// Limits returns the rate and concurrency limits of a user or a team.
func (s *Service) Limits(ctx context.Context, a domain.Actor, scope domain.LimitScope, id string) (domain.Limits, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return domain.Limits{}, err
	}
	return s.store.Limits(ctx, scope, id)
}

// Models returns the catalogue's models, with their limits, as they are
// now.
func (s *Service) Models(_ context.Context, a domain.Actor) ([]domain.Model, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	if s.opts.Models == nil {
		return nil, nil
	}
	return s.opts.Models(), nil
}

// Keys lists every API key, revoked ones included, oldest first.
func (s *Service) Keys(ctx context.Context, a domain.Actor) ([]domain.APIKey, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	return s.store.List(ctx)
}

// Key returns one API key.
func (s *Service) Key(ctx context.Context, a domain.Actor, id string) (domain.APIKey, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return domain.APIKey{}, err
	}
	return s.store.Key(ctx, id)
}

// CreateAdminKey creates an admin key and returns it with its secret, shown once.
func (s *Service) CreateAdminKey(ctx context.Context, a domain.Actor, reason, name string, scopes []domain.AdminScope) (domain.AdminKey, string, error) {
	e, err := s.entry(a, domain.AdminWrite, "admin_key.create", reason)
	if err != nil {
		return domain.AdminKey{}, "", err
	}
	return s.store.CreateAdminKey(ctx, name, scopes, e)
}

// Audit returns the audit entries q selects, newest first, at most
// MaxAuditPage of them.
func (s *Service) Audit(ctx context.Context, a domain.Actor, q domain.AuditQuery) ([]domain.AuditEntry, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > MaxAuditPage {
		return nil, domain.InvalidParam("limit", "limit must be between 1 and %d", MaxAuditPage)
	}
	if actions := domain.AuditActions(); q.Action != "" && !slices.Contains(actions, q.Action) {
		// Not an empty page: a typo (key.revoked) would read as "no revocations".
		return nil, domain.InvalidParam("action", "there is no action %q; action must be one of %s", q.Action, strings.Join(actions, ", "))
	}
	return s.store.Audit(ctx, q)
}

// AuthenticateAdminKey returns the actor behind an admin key's secret, or a
// domain.KindUnauthenticated error. Only the secret's hash reaches the store.
func (s *Service) AuthenticateAdminKey(ctx context.Context, secret string) (domain.Actor, error) {
	if !strings.HasPrefix(secret, domain.AdminKeyPrefix) || len(secret) > 256 {
		return domain.Actor{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_admin_key", Message: "invalid admin key"}
	}
	k, err := s.store.AdminKeyByHash(ctx, domain.HashKey(secret))
	if err != nil {
		return domain.Actor{}, err
	}
	return domain.Actor{Kind: domain.ActorAdminKey, ID: k.ID, Scopes: k.Scopes}, nil
}

// Recheck returns the actor a session signed in earlier as a is now: an
// admin key's actor with the key's current scopes, or a
// domain.KindUnauthenticated error once the key is revoked, so that
// revoking an admin key ends its console sessions at once. Other actors
// (signed in at the identity provider) are returned as they are: their
// sessions end when they expire.
func (s *Service) Recheck(ctx context.Context, a domain.Actor) (domain.Actor, error) {
	if a.Kind != domain.ActorAdminKey {
		return a, nil
	}
	k, err := s.store.AdminKey(ctx, a.ID)
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		return domain.Actor{}, err
	}
	if err == nil && k.RevokedAt == nil {
		return domain.Actor{Kind: domain.ActorAdminKey, ID: k.ID, Scopes: k.Scopes}, nil
	}
	return domain.Actor{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "admin_key_revoked",
		Message: "the admin key this session signed in with has been revoked"}
}

// AuthenticateToken returns the actor behind a token of the identity
// provider: the token's subject, with the scopes its roles map to (none
// when no role is mapped: such an actor may do nothing). A token that is
// not valid is a domain.KindUnauthenticated error.
func (s *Service) AuthenticateToken(ctx context.Context, token string) (domain.Actor, error) {
	if s.opts.Tokens == nil {
		return domain.Actor{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_disabled",
			Message: "this gateway accepts no identity-provider tokens (OIDC_ISSUER_URL is not set); use an admin key"}
	}
	id, err := s.opts.Tokens.VerifyToken(ctx, token)
	if err != nil {
		return domain.Actor{}, err
	}
	return s.ActorOf(id), nil
}

// ActorOf returns the administrator a verified identity of the identity
// provider is: its subject, with the scopes its roles map to through
// RoleScopes (none when no role is mapped).
func (s *Service) ActorOf(id domain.Identity) domain.Actor {
	return domain.Actor{Kind: domain.ActorOIDC, ID: id.Subject, Scopes: s.opts.RoleScopes.Scopes(id.Roles)}
}

// entry checks that a may make a change needing scope, with a reason, and
// starts its audit entry.
func (s *Service) entry(a domain.Actor, scope domain.AdminScope, action, reason string) (domain.AuditEntry, error) {
	if err := allowed(a, scope); err != nil {
		return domain.AuditEntry{}, err
	}
	reason = strings.TrimSpace(reason)
	if err := domain.CheckAuditReason(reason, s.opts.MinReasonLen, s.opts.MaxReasonLen); err != nil {
		return domain.AuditEntry{}, err
	}
	return domain.AuditEntry{At: s.opts.Now().UTC(), Actor: a, Action: action, Reason: reason}, nil
}

// allowed returns a domain.KindForbidden error unless a holds scope.
func allowed(a domain.Actor, scope domain.AdminScope) error {
	if a.ID == "" || !a.May(scope) {
		return &domain.Error{Kind: domain.KindForbidden, Code: "insufficient_scope",
			Message: fmt.Sprintf("this needs the %s scope", scope)}
	}
	return nil
}
