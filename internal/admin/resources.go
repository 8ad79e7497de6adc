package admin

import (
	"context"

	"github.com/tidygate/tidygate/internal/domain"
)

// MaxPage is the most keys, users or teams one page lists.
const MaxPage = 500

// checkLimit refuses a page size outside 1 to MaxPage.
func checkLimit(limit int) error {
	if limit <= 0 || limit > MaxPage {
		return domain.InvalidParam("limit", "limit must be between 1 and %d", MaxPage)
	}
	return nil
}

// KeyPage returns the page of API keys q selects, oldest first, and
// whether more follow it (the next page starts after the last key).
func (s *Service) KeyPage(ctx context.Context, a domain.Actor, q domain.KeyQuery) ([]domain.APIKey, bool, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, false, err
	}
	if err := checkLimit(q.Limit); err != nil {
		return nil, false, err
	}
	q.Limit++
	keys, err := s.store.Keys(ctx, q)
	if err != nil {
		return nil, false, err
	}
	return pageOf(keys, q.Limit-1)
}

// pageOf cuts the one extra item a page query read, which says that more
// follow.
func pageOf[T any](items []T, limit int) ([]T, bool, error) {
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}

// UpdateKey changes an API key's models, rate limits, concurrency bound
// and the budgets of the key, its user or its team, as u says. A non-empty
// ifMatch must be the key's current version (domain.KeyVersion).
func (s *Service) UpdateKey(ctx context.Context, a domain.Actor, reason, id string, u domain.KeyUpdate, ifMatch string) (domain.APIKey, error) {
	e, err := s.entry(a, domain.AdminWrite, "key.update", reason)
	if err != nil {
		return domain.APIKey{}, err
	}
	if err := u.Validate(); err != nil {
		return domain.APIKey{}, err
	}
	if u.AllowedModels != nil {
		models := onceEach(*u.AllowedModels)
		u.AllowedModels = &models
		if err := s.knownModels("allowed_models", models); err != nil {
			return domain.APIKey{}, err
		}
	}
	if err := s.knownModels("budgets", domain.BudgetModels(u.Budgets)); err != nil {
		return domain.APIKey{}, err
	}
	return s.store.UpdateKey(ctx, id, u, ifMatch, e)
}

// AdminKeys lists every admin key, revoked ones included, oldest first.
func (s *Service) AdminKeys(ctx context.Context, a domain.Actor) ([]domain.AdminKey, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	return s.store.AdminKeys(ctx)
}

// RevokeAdminKey revokes an admin key at once; the next request with it is
// refused. An administrator may revoke their own key.
func (s *Service) RevokeAdminKey(ctx context.Context, a domain.Actor, reason, id string) (domain.AdminKey, error) {
	e, err := s.entry(a, domain.AdminWrite, "admin_key.revoke", reason)
	if err != nil {
		return domain.AdminKey{}, err
	}
	return s.store.RevokeAdminKey(ctx, id, e)
}

// checkScope refuses a scope that is not a user or a team.
func checkScope(scope domain.ScopeKind) error {
	if scope != domain.ScopeUser && scope != domain.ScopeTeam {
		return domain.InvalidParam("scope", "%q is neither user nor team", scope)
	}
	return nil
}

// Principals returns the page of users or teams q selects, by ID, and
// whether more follow it.
func (s *Service) Principals(ctx context.Context, a domain.Actor, q domain.PrincipalQuery) ([]domain.Principal, bool, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, false, err
	}
	if err := checkScope(q.Scope); err != nil {
		return nil, false, err
	}
	if err := checkLimit(q.Limit); err != nil {
		return nil, false, err
	}
	q.Limit++
	list, err := s.store.Principals(ctx, q)
	if err != nil {
		return nil, false, err
	}
	return pageOf(list, q.Limit-1)
}

// Principal returns one user or team; one that no key or budget names
// yet has neither.
func (s *Service) Principal(ctx context.Context, a domain.Actor, scope domain.ScopeKind, id string) (domain.Principal, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return domain.Principal{}, err
	}
	if err := checkScope(scope); err != nil {
		return domain.Principal{}, err
	}
	return s.store.Principal(ctx, scope, id)
}

// ChangePrincipal changes a user or a team as c says, in one step with one
// audit entry: budgets set (a positive limit) or removed (zero), on every
// model or on one model or group, per day, week, month or rolling window;
// rate and concurrency limits set (positive) or removed (zero). Each
// budget's Scope and ScopeID are set to the user or team. A non-empty
// ifMatch must be its current version (domain.PrincipalVersion).
func (s *Service) ChangePrincipal(ctx context.Context, a domain.Actor, reason string, scope domain.ScopeKind, id string,
	c domain.PrincipalChange, ifMatch string) (domain.Principal, error) {
	e, err := s.entry(a, domain.AdminWrite, string(scope)+".update", reason)
	if err != nil {
		return domain.Principal{}, err
	}
	if err := checkScope(scope); err != nil {
		return domain.Principal{}, err
	}
	if len(c.Budgets) == 0 && c.Limits.IsZero() {
		return domain.Principal{}, domain.InvalidParam("body", "the update changes nothing: name at least one budget or limit")
	}
	named := make([]domain.Budget, len(c.Budgets))
	for i, b := range c.Budgets {
		b.Scope, b.ScopeID = scope, id
		named[i] = b
	}
	if err := domain.ValidateBudgetChanges(named); err != nil {
		return domain.Principal{}, err
	}
	if err := s.knownModels("budgets", domain.BudgetModels(named)); err != nil {
		return domain.Principal{}, err
	}
	if err := c.Limits.Validate(); err != nil {
		return domain.Principal{}, err
	}
	c.Budgets = named
	return s.store.ChangePrincipal(ctx, scope, id, c, ifMatch, e)
}

// UsageReport returns the usage of settled calls q selects, one line per
// team, user, model or day, at most domain.MaxUsageDays days of it.
func (s *Service) UsageReport(ctx context.Context, a domain.Actor, q domain.UsageQuery) ([]domain.UsageLine, error) {
	if err := allowed(a, domain.AdminRead); err != nil {
		return nil, err
	}
	switch q.GroupBy {
	case domain.GroupByTeam, domain.GroupByUser, domain.GroupByModel, domain.GroupByDay:
	default:
		return nil, domain.InvalidParam("group_by", "group_by must be team, user, model or day")
	}
	from, to := domain.PeriodDay.Start(q.From), domain.PeriodDay.Start(q.To)
	if to.Before(from) {
		return nil, domain.InvalidParam("to", "to is before from")
	}
	if days := int(to.Sub(from).Hours()/24) + 1; days > domain.MaxUsageDays {
		return nil, domain.InvalidParam("from", "the report spans %d days; at most %d are allowed", days, domain.MaxUsageDays)
	}
	return s.store.UsageReport(ctx, q)
}
