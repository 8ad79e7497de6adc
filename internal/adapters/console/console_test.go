package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/console"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
)

// store is an in-memory admin.KeyAdmin that keeps the audit entries the
// service hands it. Methods the console does not call are left to the
// embedded nil interface.
type store struct {
	admin.KeyAdmin
	mu      sync.Mutex
	keys    []domain.APIKey
	entries []domain.AuditEntry
	admins  map[string]domain.AdminKey    // by hash
	usage   map[string][]domain.UsageLine // the usage report, by grouping
	asked   []domain.UsageQuery           // the usage reports asked for
	// principals are the users and teams changed, by "scope:id".
	principals map[string]domain.Principal
}

func (s *store) audit(e domain.AuditEntry, target string, before, after *domain.APIKey) {
	e.ID, e.Target = int64(len(s.entries)+1), target
	if before != nil {
		e.Before = before
	}
	e.After = after
	s.entries = append(s.entries, e)
}

func (s *store) find(id string) (int, error) {
	for i, k := range s.keys {
		if k.ID == id {
			return i, nil
		}
	}
	return 0, &domain.Error{Kind: domain.KindNotFound, Code: "key_not_found", Message: "no key " + id}
}

func (s *store) CreateKey(_ context.Context, nk domain.NewKey, e domain.AuditEntry) (domain.APIKey, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("key_%d", len(s.keys)+1)
	k := domain.APIKey{ID: id, CreatedAt: e.At, Caller: domain.Caller{KeyID: id, User: nk.User, Team: nk.Team,
		AllowedModels: nk.AllowedModels, RPM: nk.RPM, TPM: nk.TPM, KeyExpiresAt: nk.ExpiresAt}}
	for _, b := range nk.Budgets() {
		if b.Limit > 0 {
			k.Caller.Budgets = append(k.Caller.Budgets, b)
		}
	}
	s.keys = append(s.keys, k)
	s.audit(e, id, nil, &k)
	return k, "tg-secret-of-" + id, nil
}

func (s *store) change(id, ifMatch string, e domain.AuditEntry, f func(*domain.APIKey)) (domain.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.find(id)
	if err != nil {
		return domain.APIKey{}, err
	}
	before := s.keys[i]
	if ifMatch != "" && ifMatch != domain.KeyVersion(before) {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindInvalid, Code: domain.CodeVersionMismatch, Message: "the key has changed"}
	}
	after := before
	f(&after)
	s.keys[i] = after
	s.audit(e, id, &before, &after)
	return after, nil
}

func (s *store) RevokeKey(_ context.Context, id, ifMatch string, e domain.AuditEntry) (domain.APIKey, error) {
	return s.change(id, ifMatch, e, func(k *domain.APIKey) { k.RevokedAt = &e.At })
}

func (s *store) RotateKey(_ context.Context, id string, grace time.Duration, ifMatch string, e domain.AuditEntry) (domain.APIKey, string, error) {
	k, err := s.change(id, ifMatch, e, func(k *domain.APIKey) {
		until := e.At.Add(grace)
		k.RotatedAt, k.PreviousValidUntil = &e.At, &until
	})
	return k, "tg-rotated-" + id, err
}

func (s *store) SetKeyExpiry(_ context.Context, id string, at time.Time, ifMatch string, e domain.AuditEntry) (domain.APIKey, error) {
	return s.change(id, ifMatch, e, func(k *domain.APIKey) { k.Caller.KeyExpiresAt = at })
}

func (s *store) List(context.Context) ([]domain.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.APIKey(nil), s.keys...), nil
}

func (s *store) Key(_ context.Context, id string) (domain.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.find(id)
	if err != nil {
		return domain.APIKey{}, err
	}
	return s.keys[i], nil
}

func (s *store) AdminKeyByHash(_ context.Context, hash string) (domain.AdminKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.admins[hash]
	if !ok {
		return domain.AdminKey{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_admin_key", Message: "invalid admin key"}
	}
	return k, nil
}

func (s *store) AdminKey(_ context.Context, id string) (domain.AdminKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.admins {
		if k.ID == id {
			return k, nil
		}
	}
	return domain.AdminKey{}, domain.Errorf(domain.KindNotFound, "no admin key %q", id)
}

// changeAdminKey changes the admin key whose secret is secret, as another
// administrator might while a session of it is open.
func (s *store) changeAdminKey(secret string, change func(*domain.AdminKey)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.admins[domain.HashKey(secret)]
	change(&k)
	s.admins[domain.HashKey(secret)] = k
}

func (s *store) Audit(_ context.Context, q domain.AuditQuery) ([]domain.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.AuditEntry
	for i := len(s.entries) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := s.entries[i]
		if (q.Target == "" || e.Target == q.Target) && (q.Action == "" || e.Action == q.Action) && (q.BeforeID <= 0 || e.ID < q.BeforeID) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *store) count() (keys, entries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys), len(s.entries)
}

// The admin keys the tests sign in with.
const (
	writerKey = "tga-writer-0123456789abcdef0123456789"
	readerKey = "tga-reader-0123456789abcdef0123456789"
)

// fixture is a console on a fresh store, on a clock the test moves.
type fixture struct {
	t     *testing.T
	store *store
	srv   *httptest.Server
	mu    sync.Mutex
	now   time.Time
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with the options configure adds, given the
// address the console is served at.
func newFixtureWith(t *testing.T, configure func(baseURL string, ao *admin.Options, co *console.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Now().UTC().Truncate(time.Minute), store: &store{admins: map[string]domain.AdminKey{
		domain.HashKey(writerKey): {ID: "adm_writer", Name: "writer", Scopes: []domain.AdminScope{domain.AdminRead, domain.AdminWrite}},
		domain.HashKey(readerKey): {ID: "adm_reader", Name: "reader", Scopes: []domain.AdminScope{domain.AdminRead}},
	}}}
	clock := func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	f.srv = httptest.NewUnstartedServer(nil)
	ao := admin.Options{MinReasonLen: 5, Now: clock}
	co := console.Options{SessionSecret: []byte(strings.Repeat("k", 32)), SessionTTL: time.Hour,
		MinReasonLen: 5, Now: clock, Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 3, clock)}
	if configure != nil {
		configure("http://"+f.srv.Listener.Addr().String(), &ao, &co)
	}
	h, err := console.NewHandler(admin.NewService(f.store, ao), co)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = h
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	f      *fixture
	client *http.Client
	csrf   string // the last page's CSRF token
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// page is one answer.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.f.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return b.read(resp)
}

// read returns the answer resp brings, and keeps its CSRF token.
func (b *browser) read(resp *http.Response) page {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.f.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, b.f.srv.URL+path, nil)
	return b.do(req)
}

// post submits a form with the last page's CSRF token unless the form
// names its own.
func (b *browser) post(path string, form url.Values) page {
	b.f.t.Helper()
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs b in with key and fails the test unless it works.
func (b *browser) signIn(key string) {
	b.f.t.Helper()
	b.get("/console/sign-in")
	if p := b.post("/console/sign-in", url.Values{"admin_key": {key}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		b.f.t.Fatalf("sign in: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
}

func cookieOf(p page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "tidygate_console" {
			return c
		}
	}
	return nil
}
