package admin_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// fakeStore records the audit entries the service hands it.
type fakeStore struct {
	entries []domain.AuditEntry
	keys    map[string]domain.APIKey
	admins  map[string]domain.AdminKey // by hash
	// lastLimit is the limit of the last page the service asked for.
	lastLimit int
	limits    map[string]domain.Limits // by "scope:id"
}

func newFake() *fakeStore {
	return &fakeStore{keys: map[string]domain.APIKey{}, admins: map[string]domain.AdminKey{}, limits: map[string]domain.Limits{}}
}

func (f *fakeStore) SetLimits(_ context.Context, scope domain.LimitScope, id string, l domain.Limits, e domain.AuditEntry) (domain.Limits, error) {
	before := domain.LimitsOf{Scope: scope, ID: id, Limits: f.limits[string(scope)+":"+id]}
	after := before
	after.Limits = l
	f.limits[before.Name()] = l
	e.Target, e.Before, e.After = before.Name(), &before, &after
	f.entries = append(f.entries, e)
	return l, nil
}

func (f *fakeStore) Limits(_ context.Context, scope domain.LimitScope, id string) (domain.Limits, error) {
	return f.limits[string(scope)+":"+id], nil
}

func (f *fakeStore) CreateKey(_ context.Context, nk domain.NewKey, e domain.AuditEntry) (domain.APIKey, string, error) {
	k := domain.APIKey{ID: "key_1", Caller: domain.Caller{KeyID: "key_1", User: nk.User, Team: nk.Team, AllowedModels: nk.AllowedModels}}
	f.keys[k.ID] = k
	e.Target, e.After = k.ID, &k
	f.entries = append(f.entries, e)
	return k, "tg-secret", nil
}

func (f *fakeStore) RevokeKey(_ context.Context, id, _ string, e domain.AuditEntry) (domain.APIKey, error) {
	k, ok := f.keys[id]
	if !ok {
		return domain.APIKey{}, domain.Errorf(domain.KindNotFound, "no key %s", id)
	}
	before := k
	now := time.Unix(1, 0)
	k.RevokedAt = &now
	f.keys[id] = k
	e.Target, e.Before, e.After = id, &before, &k
	f.entries = append(f.entries, e)
	return k, nil
}

func (f *fakeStore) RotateKey(_ context.Context, id string, grace time.Duration, _ string, e domain.AuditEntry) (domain.APIKey, string, error) {
	k, ok := f.keys[id]
	if !ok {
		return domain.APIKey{}, "", domain.Errorf(domain.KindNotFound, "no key %s", id)
	}
	before := k
	until := instant.Add(grace)
	k.RotatedAt, k.PreviousValidUntil = &instant, &until
	f.keys[id] = k
	e.Target, e.Before, e.After = id, &before, &k
	f.entries = append(f.entries, e)
	return k, "tg-rotated", nil
}

func (f *fakeStore) SetKeyExpiry(_ context.Context, id string, at time.Time, _ string, e domain.AuditEntry) (domain.APIKey, error) {
	k, ok := f.keys[id]
	if !ok {
		return domain.APIKey{}, domain.Errorf(domain.KindNotFound, "no key %s", id)
	}
	before := k
	k.Caller.KeyExpiresAt = at
	f.keys[id] = k
	e.Target, e.Before, e.After = id, &before, &k
	f.entries = append(f.entries, e)
	return k, nil
}

func (f *fakeStore) List(context.Context) ([]domain.APIKey, error) {
	var out []domain.APIKey
	for _, k := range f.keys {
		out = append(out, k)
	}
	return out, nil
}

func (f *fakeStore) Key(_ context.Context, id string) (domain.APIKey, error) { return f.keys[id], nil }

func (f *fakeStore) CreateAdminKey(_ context.Context, name string, scopes []domain.AdminScope, e domain.AuditEntry) (domain.AdminKey, string, error) {
	k := domain.AdminKey{ID: "adm_1", Name: name, Scopes: scopes}
	f.admins[domain.HashKey(domain.AdminKeyPrefix+"x")] = k
	e.Target, e.After = k.ID, &k
	f.entries = append(f.entries, e)
	return k, domain.AdminKeyPrefix + "x", nil
}

func (f *fakeStore) AdminKeyByHash(_ context.Context, hash string) (domain.AdminKey, error) {
	k, ok := f.admins[hash]
	if !ok {
		return domain.AdminKey{}, domain.Errorf(domain.KindUnauthenticated, "invalid admin key")
	}
	return k, nil
}

func (f *fakeStore) Audit(_ context.Context, q domain.AuditQuery) ([]domain.AuditEntry, error) {
	return f.entries, nil
}

func (f *fakeStore) UpdateKey(_ context.Context, id string, u domain.KeyUpdate, _ string, e domain.AuditEntry) (domain.APIKey, error) {
	k, ok := f.keys[id]
	if !ok {
		return domain.APIKey{}, domain.Errorf(domain.KindNotFound, "no key %s", id)
	}
	before := k
	if u.RPM != nil {
		k.Caller.RPM = *u.RPM
	}
	if u.AllowedModels != nil {
		k.Caller.AllowedModels = *u.AllowedModels
	}
	f.keys[id] = k
	e.Target, e.Before, e.After = id, &before, &k
	f.entries = append(f.entries, e)
	return k, nil
}

// Keys returns the keys in ID order, as many as asked for.
func (f *fakeStore) Keys(_ context.Context, q domain.KeyQuery) ([]domain.APIKey, error) {
	f.lastLimit = q.Limit
	var out []domain.APIKey
	for _, id := range slices.Sorted(maps.Keys(f.keys)) {
		if len(out) < q.Limit {
			out = append(out, f.keys[id])
		}
	}
	return out, nil
}

func (f *fakeStore) RevokeAdminKey(_ context.Context, id string, e domain.AuditEntry) (domain.AdminKey, error) {
	k := domain.AdminKey{ID: id, RevokedAt: &instant}
	e.Target, e.After = id, &k
	f.entries = append(f.entries, e)
	return k, nil
}

func (f *fakeStore) AdminKeys(context.Context) ([]domain.AdminKey, error) { return nil, nil }

func (f *fakeStore) AdminKey(_ context.Context, id string) (domain.AdminKey, error) {
	return domain.AdminKey{}, domain.Errorf(domain.KindNotFound, "no admin key %q", id)
}

func (f *fakeStore) Principals(_ context.Context, q domain.PrincipalQuery) ([]domain.Principal, error) {
	f.lastLimit = q.Limit
	return []domain.Principal{{Scope: q.Scope, ID: "a"}, {Scope: q.Scope, ID: "b"}}[:min(2, q.Limit)], nil
}

func (f *fakeStore) Principal(_ context.Context, scope domain.ScopeKind, id string) (domain.Principal, error) {
	return domain.Principal{Scope: scope, ID: id}, nil
}

func (f *fakeStore) ChangePrincipal(_ context.Context, scope domain.ScopeKind, id string, c domain.PrincipalChange,
	_ string, e domain.AuditEntry) (domain.Principal, error) {
	p := domain.Principal{Scope: scope, ID: id, Budgets: c.Budgets, Limits: c.Limits.Apply(domain.Limits{})}
	e.Target, e.After = string(scope)+":"+id, &p
	f.entries = append(f.entries, e)
	return p, nil
}

func (f *fakeStore) UsageReport(_ context.Context, q domain.UsageQuery) ([]domain.UsageLine, error) {
	return []domain.UsageLine{{Group: q.GroupBy}}, nil
}

var (
	writer  = domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_w", Scopes: []domain.AdminScope{domain.AdminWrite}}
	reader  = domain.Actor{Kind: domain.ActorOIDC, ID: "auditor@example.com", Scopes: []domain.AdminScope{domain.AdminRead}}
	nobody  = domain.Actor{Kind: domain.ActorOIDC, ID: "someone@example.com"}
	instant = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// dayBudget is a budget of $5 a day, on every model.
	dayBudget = domain.Budget{Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}
)

func newService(f *fakeStore) *admin.Service {
	return admin.NewService(f, admin.Options{MinReasonLen: 5, Now: func() time.Time { return instant }})
}

// TestWritesCarryTheirAuditEntry checks that each change reaches the store
// with one audit entry naming the actor, the action, the time and the reason.
func TestWritesCarryTheirAuditEntry(t *testing.T) {
	f := newFake()
	svc := newService(f)
	ctx := context.Background()
	if _, _, err := svc.CreateKey(ctx, writer, "  onboarding alice ", domain.NewKey{User: "alice", Team: "risk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeKey(ctx, writer, "alice left", "key_1", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateAdminKey(ctx, writer, "automation", "ci", []domain.AdminScope{domain.AdminRead}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RotateKey(ctx, writer, "quarterly rotation", "key_1", time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetKeyExpiry(ctx, writer, "contract ends", "key_1", instant.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	rpm := 60
	if _, err := svc.UpdateKey(ctx, writer, "more calls", "key_1", domain.KeyUpdate{RPM: &rpm}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeAdminKey(ctx, writer, "ci retired", "adm_1"); err != nil {
		t.Fatal(err)
	}
	week := domain.Budget{Period: domain.PeriodWeek, Limit: 500 * domain.MicrosPerUSD}
	p, err := svc.ChangePrincipal(ctx, writer, "quarter plan", domain.ScopeTeam, "risk", domain.PrincipalChange{Budgets: []domain.Budget{week}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if b := p.Budgets[0]; b.Scope != domain.ScopeTeam || b.ScopeID != "risk" {
		t.Errorf("the team's budget reached the store as %+v, want it named after the team", b)
	}
	if _, err := svc.SetLimits(ctx, writer, "risk team's quota", domain.LimitTeam, "risk", domain.Limits{RPM: 60}); err != nil {
		t.Fatal(err)
	}
	tpm, none := 9000, 0
	p, err = svc.ChangePrincipal(ctx, writer, "alice's share", domain.ScopeUser, "alice",
		domain.PrincipalChange{Limits: domain.LimitsChange{TPM: &tpm, MaxConcurrent: &none}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Limits != (domain.Limits{TPM: 9000}) {
		t.Errorf("alice's limits reached the store as %+v, want tpm 9000 alone", p.Limits)
	}
	want := []struct{ action, reason string }{{"key.create", "onboarding alice"}, {"key.revoke", "alice left"}, {"admin_key.create", "automation"},
		{"key.rotate", "quarterly rotation"}, {"key.set_expiry", "contract ends"}, {"key.update", "more calls"},
		{"admin_key.revoke", "ci retired"}, {"team.update", "quarter plan"}, {"limits.set", "risk team's quota"},
		{"user.update", "alice's share"}}
	if len(f.entries) != len(want) {
		t.Fatalf("%d audit entries, want %d", len(f.entries), len(want))
	}
	for i, w := range want {
		e := f.entries[i]
		if e.Action != w.action || e.Reason != w.reason || e.Actor.String() != "admin_key:adm_w" || !e.At.Equal(instant) {
			t.Errorf("entry %d = %+v, want action %s, reason %q by admin_key:adm_w at %v", i, e, w.action, w.reason, instant)
		}
	}
}

// TestScopesAndReasons checks that read cannot write, that nobody without a
// scope can read, and that a write without a long enough reason is refused
// before it reaches the store.
func TestScopesAndReasons(t *testing.T) {
	f := newFake()
	svc := newService(f)
	ctx := context.Background()
	cases := map[string]struct {
		call func() error
		kind domain.Kind
	}{
		"read creates": {func() error {
			_, _, err := svc.CreateKey(ctx, reader, "a good reason", domain.NewKey{User: "u", Team: "t"})
			return err
		}, domain.KindForbidden},
		"read revokes":        {func() error { _, err := svc.RevokeKey(ctx, reader, "a good reason", "key_1", ""); return err }, domain.KindForbidden},
		"read makes an admin": {func() error { _, _, err := svc.CreateAdminKey(ctx, reader, "a good reason", "x", nil); return err }, domain.KindForbidden},
		"nobody lists":        {func() error { _, err := svc.Keys(ctx, nobody); return err }, domain.KindForbidden},
		"nobody reads audit": {func() error {
			_, err := svc.Audit(ctx, nobody, domain.AuditQuery{Limit: 10})
			return err
		}, domain.KindForbidden},
		"read rotates": {func() error { _, _, err := svc.RotateKey(ctx, reader, "a good reason", "key_1", 0, ""); return err }, domain.KindForbidden},
		"read sets expiry": {func() error {
			_, err := svc.SetKeyExpiry(ctx, reader, "a good reason", "key_1", instant, "")
			return err
		}, domain.KindForbidden},
		"read sets limits": {func() error {
			_, err := svc.SetLimits(ctx, reader, "a good reason", domain.LimitUser, "alice", domain.Limits{RPM: 1})
			return err
		}, domain.KindForbidden},
		"nobody reads limits": {func() error {
			_, err := svc.Limits(ctx, nobody, domain.LimitUser, "alice")
			return err
		}, domain.KindForbidden},
		"negative grace": {func() error {
			_, _, err := svc.RotateKey(ctx, writer, "a good reason", "key_1", -time.Second, "")
			return err
		}, domain.KindInvalid},
		"endless grace": {func() error {
			_, _, err := svc.RotateKey(ctx, writer, "a good reason", "key_1", admin.MaxRotationGrace+time.Second, "")
			return err
		}, domain.KindInvalid},
		"no reason":    {func() error { _, err := svc.RevokeKey(ctx, writer, "   ", "key_1", ""); return err }, domain.KindInvalid},
		"short reason": {func() error { _, err := svc.RevokeKey(ctx, writer, " abc ", "key_1", ""); return err }, domain.KindInvalid},
		"read updates": {func() error {
			_, err := svc.UpdateKey(ctx, reader, "a good reason", "key_1", domain.KeyUpdate{Budgets: []domain.Budget{dayBudget}}, "")
			return err
		}, domain.KindForbidden},
		"read revokes an admin key": {func() error { _, err := svc.RevokeAdminKey(ctx, reader, "a good reason", "adm_1"); return err }, domain.KindForbidden},
		"read changes budgets": {func() error {
			_, err := svc.ChangePrincipal(ctx, reader, "a good reason", domain.ScopeTeam, "risk", domain.PrincipalChange{Budgets: []domain.Budget{dayBudget}}, "")
			return err
		}, domain.KindForbidden},
		"nobody reads models": {func() error {
			_, err := svc.Models(ctx, nobody)
			return err
		}, domain.KindForbidden},
		"nobody reads usage": {func() error {
			_, err := svc.UsageReport(ctx, nobody, domain.UsageQuery{GroupBy: domain.GroupByTeam, From: instant, To: instant})
			return err
		}, domain.KindForbidden},
		"empty update": {func() error {
			_, err := svc.UpdateKey(ctx, writer, "a good reason", "key_1", domain.KeyUpdate{}, "")
			return err
		}, domain.KindInvalid},
		"negative rpm": {func() error {
			n := -1
			_, err := svc.UpdateKey(ctx, writer, "a good reason", "key_1", domain.KeyUpdate{RPM: &n}, "")
			return err
		}, domain.KindInvalid},
		"a budget twice": {func() error {
			_, err := svc.ChangePrincipal(ctx, writer, "a good reason", domain.ScopeUser, "bob", domain.PrincipalChange{Budgets: []domain.Budget{dayBudget, dayBudget}}, "")
			return err
		}, domain.KindInvalid},
		"read changes limits": {func() error {
			rpm := 5
			_, err := svc.ChangePrincipal(ctx, reader, "a good reason", domain.ScopeUser, "bob", domain.PrincipalChange{Limits: domain.LimitsChange{RPM: &rpm}}, "")
			return err
		}, domain.KindForbidden},
		"a negative limit": {func() error {
			n := -1
			_, err := svc.ChangePrincipal(ctx, writer, "a good reason", domain.ScopeTeam, "risk", domain.PrincipalChange{Limits: domain.LimitsChange{MaxConcurrent: &n}}, "")
			return err
		}, domain.KindInvalid},
		"a limit over 32 bits": {func() error {
			n := domain.MaxLimit + 1
			_, err := svc.ChangePrincipal(ctx, writer, "a good reason", domain.ScopeTeam, "risk", domain.PrincipalChange{Limits: domain.LimitsChange{TPM: &n}}, "")
			return err
		}, domain.KindInvalid},
		"no budgets": {func() error {
			_, err := svc.ChangePrincipal(ctx, writer, "a good reason", domain.ScopeUser, "bob", domain.PrincipalChange{}, "")
			return err
		}, domain.KindInvalid},
		"budgets of a key's scope": {func() error {
			_, err := svc.ChangePrincipal(ctx, writer, "a good reason", domain.ScopeKey, "key_1", domain.PrincipalChange{Budgets: []domain.Budget{dayBudget}}, "")
			return err
		}, domain.KindInvalid},
		"usage by colour": {func() error {
			_, err := svc.UsageReport(ctx, reader, domain.UsageQuery{GroupBy: "colour", From: instant, To: instant})
			return err
		}, domain.KindInvalid},
		"usage backwards": {func() error {
			_, err := svc.UsageReport(ctx, reader, domain.UsageQuery{GroupBy: domain.GroupByDay, From: instant, To: instant.AddDate(0, 0, -1)})
			return err
		}, domain.KindInvalid},
		"usage over a year": {func() error {
			_, err := svc.UsageReport(ctx, reader, domain.UsageQuery{GroupBy: domain.GroupByDay, From: instant, To: instant.AddDate(0, 0, domain.MaxUsageDays)})
			return err
		}, domain.KindInvalid},
		"huge key page": {func() error {
			_, _, err := svc.KeyPage(ctx, reader, domain.KeyQuery{Limit: admin.MaxPage + 1})
			return err
		}, domain.KindInvalid},
		"huge page": {func() error {
			_, err := svc.Audit(ctx, reader, domain.AuditQuery{Limit: admin.MaxAuditPage + 1})
			return err
		}, domain.KindInvalid},
	}
	for name, c := range cases {
		if err := c.call(); !errors.Is(err, c.kind) {
			t.Errorf("%s: error = %v, want kind %v", name, err, c.kind)
		}
	}
	if len(f.entries) != 0 {
		t.Errorf("refused changes left %d audit entries", len(f.entries))
	}
	if _, err := svc.Keys(ctx, reader); err != nil {
		t.Errorf("read lists keys: %v", err)
	}
	if _, err := svc.Keys(ctx, writer); err != nil {
		t.Errorf("write lists keys (write implies read): %v", err)
	}
}

// TestAuthenticateAdminKey checks that only an admin key's hash is looked up
// and that an API key's shape is refused outright.
func TestAuthenticateAdminKey(t *testing.T) {
	f := newFake()
	svc := newService(f)
	ctx := context.Background()
	_, secret, err := svc.CreateAdminKey(ctx, writer, "automation", "ci", []domain.AdminScope{domain.AdminRead})
	if err != nil {
		t.Fatal(err)
	}
	a, err := svc.AuthenticateAdminKey(ctx, secret)
	if err != nil || a.ID != "adm_1" || a.Kind != domain.ActorAdminKey || !a.May(domain.AdminRead) || a.May(domain.AdminWrite) {
		t.Fatalf("AuthenticateAdminKey = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "tg-an-api-key-000000000000", domain.AdminKeyPrefix + "unknown"} {
		if _, err := svc.AuthenticateAdminKey(ctx, bad); !errors.Is(err, domain.KindUnauthenticated) {
			t.Errorf("AuthenticateAdminKey(%q) error = %v, want unauthenticated", bad, err)
		}
	}
}

// TestPages checks that a page reads one item more than it shows, to tell
// whether another page follows, and shows only what was asked for.
func TestPages(t *testing.T) {
	f := newFake()
	svc := newService(f)
	ctx := context.Background()
	for _, id := range []string{"key_a", "key_b", "key_c"} {
		f.keys[id] = domain.APIKey{ID: id}
	}
	for _, c := range []struct {
		limit, n int
		more     bool
	}{{1, 1, true}, {2, 2, true}, {3, 3, false}, {10, 3, false}} {
		keys, more, err := svc.KeyPage(ctx, reader, domain.KeyQuery{Limit: c.limit})
		if err != nil || len(keys) != c.n || more != c.more || f.lastLimit != c.limit+1 {
			t.Errorf("KeyPage(limit %d) = %d keys, more %v, %v (asked the store for %d); want %d, %v",
				c.limit, len(keys), more, err, f.lastLimit, c.n, c.more)
		}
	}
	teams, more, err := svc.Principals(ctx, reader, domain.PrincipalQuery{Scope: domain.ScopeTeam, Limit: 1})
	if err != nil || len(teams) != 1 || !more {
		t.Errorf("Principals(limit 1) = %v, more %v, %v; want one team and more", teams, more, err)
	}
}

// TestModelsMustBeInTheCatalogue: a key's allow-list and a budget's model
// must name a model or alias of the catalogue in use (a group is not
// checked); a typo is refused, naming the parameter and the names, and
// nothing reaches the store.
func TestModelsMustBeInTheCatalogue(t *testing.T) {
	f := newFake()
	svc := admin.NewService(f, admin.Options{Now: func() time.Time { return instant }, Models: func() []domain.Model {
		return []domain.Model{{Name: "gpt-x", Aliases: []string{"fast"}}, {Name: "claude-y"}}
	}})
	ctx := context.Background()
	onModel := func(m string) []domain.Budget {
		b := dayBudget
		b.Model = m
		return []domain.Budget{b}
	}
	models := func(names ...string) *[]string { return &names }
	for name, tc := range map[string]struct {
		call  func() error
		param string // "" when accepted
	}{
		"a model and an alias": {func() error {
			_, _, err := svc.CreateKey(ctx, writer, "onboarding", domain.NewKey{User: "u", Team: "t", AllowedModels: []string{"gpt-x", "fast"}})
			return err
		}, ""},
		"a typo in the allow-list": {func() error {
			_, _, err := svc.CreateKey(ctx, writer, "onboarding", domain.NewKey{User: "u", Team: "t", AllowedModels: []string{"gpt-x", "claude-z"}})
			return err
		}, "allowed_models"},
		"a budget on a group": {func() error {
			_, _, err := svc.CreateKey(ctx, writer, "onboarding", domain.NewKey{User: "u", Team: "t", More: onModel(domain.GroupPrefix + "any")})
			return err
		}, ""},
		"a budget on an unknown model": {func() error {
			_, _, err := svc.CreateKey(ctx, writer, "onboarding", domain.NewKey{User: "u", Team: "t", More: onModel("gpt-z")})
			return err
		}, "budgets"},
		"an update's typo": {func() error {
			_, err := svc.UpdateKey(ctx, writer, "narrowing", "key_1", domain.KeyUpdate{AllowedModels: models("gtp-x")}, "")
			return err
		}, "allowed_models"},
		"an update's unknown budget model": {func() error {
			b := onModel("gpt-z")[0]
			b.Scope = domain.ScopeKey
			_, err := svc.UpdateKey(ctx, writer, "narrowing", "key_1", domain.KeyUpdate{Budgets: []domain.Budget{b}}, "")
			return err
		}, "budgets"},
		"a team's unknown budget model": {func() error {
			_, err := svc.ChangePrincipal(ctx, writer, "a team budget", domain.ScopeTeam, "risk", domain.PrincipalChange{Budgets: onModel("gpt-z")}, "")
			return err
		}, "budgets"},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(f.entries)
			err := tc.call()
			if tc.param == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != tc.param || !strings.Contains(de.Message, "not in the catalogue") {
				t.Errorf("err = %v; want an invalid %s naming the catalogue", err, tc.param)
			}
			if len(f.entries) != before {
				t.Errorf("a refused change reached the store")
			}
		})
	}
}

// TestAllowedModelsAreKeptOnce checks that a model named twice in a key's
// allowed models, when it is created or updated, is kept once, in the
// order first named: the rule of the service, so of the command line's
// --models, the admin API's and the console's allowed_models alike.
func TestAllowedModelsAreKeptOnce(t *testing.T) {
	ctx := context.Background()
	svc := admin.NewService(newFake(), admin.Options{})
	key, _, err := svc.CreateKey(ctx, writer, "onboarding alice", domain.NewKey{User: "alice", Team: "risk",
		AllowedModels: []string{"gpt-4o", "mock-chat", "gpt-4o", "mock-chat"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gpt-4o", "mock-chat"}; !slices.Equal(key.Caller.AllowedModels, want) {
		t.Errorf("created with %q; want %q", key.Caller.AllowedModels, want)
	}
	models := []string{"mock-chat", "mock-chat", "gpt-4o"}
	key, err = svc.UpdateKey(ctx, writer, "narrowing alice", key.ID, domain.KeyUpdate{AllowedModels: &models}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mock-chat", "gpt-4o"}; !slices.Equal(key.Caller.AllowedModels, want) {
		t.Errorf("updated to %q; want %q", key.Caller.AllowedModels, want)
	}
	if !slices.Equal(models, []string{"mock-chat", "mock-chat", "gpt-4o"}) {
		t.Errorf("the caller's list was changed: %q", models)
	}
}
