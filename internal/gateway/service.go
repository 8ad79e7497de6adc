// Package gateway is the application service, the corporate LLM gateway: the
// one place where a call flows through policy, budget, provider, ledger and
// call log. It sees persistence and providers only through ports, so it can
// be read (and tested) without a database or a network.
//
// One call, in order: validate → resolve the model and check the caller may
// use it → rate limits (tokens held like a budget) → admit into the call log,
// the caller's key and team concurrency shares and the concurrency bound →
// reserve the worst-case cost → call a deployment the model's routing picks,
// retrying on another deployment, then the fallbacks
// → price the actual cost (or release) → record the call → return, while the
// settler settles the cost in the ledger.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Call is what the edge knows about a call besides its body.
type Call struct {
	RequestID       string // unique per call: the reservation and call record key
	ClientRequestID string // the client's own request id, recorded as given
	Caller          domain.Caller
	AuditReason     string
	Start           time.Time // when the request arrived; zero means now
	// RateLimits, when set, is told the caller's rate limits as the
	// limiter reported them at admission (admitted or refused), before
	// anything is answered, so that the edge can send them as headers.
	RateLimits func(domain.RateLimits)
	// Endpoint is the API the request came through, for the record (a
	// chat call may come through chat completions, Messages or
	// Responses); empty means the operation's own endpoint.
	Endpoint domain.Endpoint
}

// Result says who answered a call and what it cost. It is filled as far as
// the call got, also when the call fails.
type Result struct {
	Model        domain.Model  // the catalogue model that answered (or was last tried)
	Attempts     int           // provider calls made
	FallbackUsed bool          // a fallback model answered
	ProviderTime time.Duration // time spent waiting on providers
	Backoff      time.Duration // time spent pausing between attempts (retry backoff)
	Cost         domain.Micros
}

// ModelName is the name to show the client for the model that answered:
// its catalogue name, whether the client asked for it by that name, by an
// alias (as OpenAI and Anthropic name the model behind an alias they
// resolve) or for another model whose fallback it is, as a passed-through
// answer shows it (domain.NativeRequest.Answer); asked, the name the
// client asked for, when the call ended before any model was tried.
func (r Result) ModelName(asked string) string {
	if r.Model.Name != "" {
		return r.Model.Name
	}
	return asked
}

// Deployment is the deployment of Model that answered (or was last tried):
// its provider instance and upstream name.
func (r Result) Deployment() domain.Deployment {
	return domain.Deployment{Provider: r.Model.Provider, Upstream: r.Model.Upstream}
}

// Waiting is the part of the call that was not tidygate's own work: the
// providers' time and the pauses between their attempts.
func (r Result) Waiting() time.Duration { return r.ProviderTime + r.Backoff }

// ChatResult is a chat completion and how it was obtained.
type ChatResult struct {
	Result
	Response domain.ChatResponse
	// Native is the provider's own answer when the request passed through
	// (ChatNative); nil when it was translated.
	Native *domain.NativeResponse
}

// EmbedResult is an embedding response and how it was obtained.
type EmbedResult struct {
	Result
	Response domain.EmbedResponse
}

// Options tune the service; a zero field means its default.
type Options struct {
	MinAuditReasonLen    int                // visible characters; default 3
	MaxAuditReasonLen    int                // characters; default 1000
	EmbedLimits          domain.EmbedLimits // bounds of an embeddings request; zero fields mean domain.DefaultEmbedLimits
	MaxAttempts          int                // attempts per model, default 3
	RetryBackoff         time.Duration      // first backoff, doubled per retry; default 200ms
	MaxConcurrentCalls   int                // concurrent upstream calls; default 256
	MaxConcurrentPerKey  int                // one key's concurrent calls; default a quarter of MaxConcurrentCalls
	MaxConcurrentPerTeam int                // one team's concurrent calls; default half of MaxConcurrentCalls
	ProviderTimeout      time.Duration      // per attempt, to the answer or a stream's first event; default 60s
	StreamTimeout        time.Duration      // bounds a whole stream; default (and at least) ProviderTimeout
	RecordTimeout        time.Duration      // bound on each step a client's departure does not end (the reservation, the record, the settlements of its limits, each settler pass); default 10s
	// IntentDelay is how long a call runs before its intent is written to
	// the call log; a call answered sooner writes only its record.
	// Default DefaultIntentDelay; negative writes every intent at once.
	IntentDelay time.Duration
	// ReserveFirst makes every call hold its reservation before its
	// provider is called. By default a call whose caller has no budget that
	// applies reserves while its provider works, and nothing of its answer
	// reaches the client before the reservation is held (see
	// call.reservesAlongside).
	ReserveFirst bool
	// SettleDelay is the longest a settlement waits for others to join its
	// batch after the call's answer (see Settled for how to wait for it);
	// its reservation holds the worst case until then. Default
	// DefaultSettleDelay; negative applies each batch at once.
	SettleDelay time.Duration
	// SignedInLimits are the per-key rate limits of callers who sign in
	// with a token (Deps.Tokens); zero fields are unlimited.
	SignedInLimits domain.SignedInLimits
	// AuthFailureLimit is how many failed authentications a client
	// address may make per rate-limit window, counted by Deps.Limiter
	// (shared by the replicas when it is); past it the address is refused
	// with a KindRateLimited error (auththrottle.CodeTooManyFailures)
	// until the window ends. 0: failures are not throttled.
	AuthFailureLimit int
	Now              func() time.Time
	Logger           *slog.Logger // warns of usage claims beyond the reservation; default slog.Default()
	// Content is what stored responses may keep of a conversation, the
	// call log's policy (MLFLOW_LOG_CONTENT); default domain.ContentFull.
	Content domain.ContentPolicy
	// ResponseRetention is how long a stored response is kept; default 720h.
	ResponseRetention time.Duration
	// StoreByDefault says whether a Responses request that does not say
	// whether to store its response is stored; nil means true, as on OpenAI.
	StoreByDefault *bool
	// ExcessClaims, when set, counts each call whose provider claimed more
	// usage than the call could consume (charged the bound, flagged in its
	// record). Default: not counted.
	ExcessClaims ExcessClaimCounter
	// Deployments, when set, is told of each attempt on each deployment
	// and of each breaker's changes. Default: nobody.
	Deployments DeploymentMetrics
	// Stages, when set, is told how long each stage of each call took (see
	// Stage). Default: nobody.
	Stages StageMetrics
	// Rand returns a number in [0, 1) for weighted routing and the latency
	// strategy's exploration; default math/rand/v2's Float64.
	Rand func() float64
	// Holder names this process and its call log on every reservation it
	// takes (the call log's identity and its run), so that Recover, run
	// again on the same call log, charges the holds an earlier run left
	// without an intent or a record; the zero Holder names nobody, and
	// Recover then has no such holds to find.
	Holder domain.Holder
	// FaultPoint, when set, is called with the name of each fault point
	// (FaultReservationSent, FaultBeforeIntent, FaultBeforeAnswer) a call
	// reaches, so that a test can stop the process at exactly that
	// instant. Only a test build sets it; nil (production) costs one
	// comparison per point.
	FaultPoint func(point string)
	// Explore is the share of latency-routed calls sent to a deployment at
	// random, so that a slow deployment that recovered is noticed; default
	// 0.05, negative for none.
	Explore float64
}

// ExcessClaimCounter counts provider usage claims beyond what a call could
// consume, by the provider and catalogue model that made them. cmd/app
// backs it with a Prometheus counter.
type ExcessClaimCounter interface {
	// CountExcessClaim adds one excessive claim by provider for model.
	CountExcessClaim(provider, model string)
}

// uncounted is the ExcessClaimCounter used when none is given.
type uncounted struct{}

func (uncounted) CountExcessClaim(string, string) {}

func (o Options) withDefaults() Options {
	if o.MinAuditReasonLen <= 0 {
		o.MinAuditReasonLen = 3
	}
	if o.MaxAuditReasonLen <= 0 {
		o.MaxAuditReasonLen = 1000
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 200 * time.Millisecond
	}
	if o.MaxConcurrentCalls <= 0 {
		o.MaxConcurrentCalls = 256
	}
	if o.MaxConcurrentPerKey <= 0 {
		o.MaxConcurrentPerKey = max(o.MaxConcurrentCalls/4, 1)
	}
	if o.MaxConcurrentPerTeam <= 0 {
		o.MaxConcurrentPerTeam = max(o.MaxConcurrentCalls/2, 1)
	}
	if o.ProviderTimeout <= 0 {
		o.ProviderTimeout = 60 * time.Second
	}
	if o.StreamTimeout < o.ProviderTimeout {
		o.StreamTimeout = o.ProviderTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ExcessClaims == nil {
		o.ExcessClaims = uncounted{}
	}
	if o.Content == "" {
		o.Content = domain.ContentFull
	}
	if o.ResponseRetention <= 0 {
		o.ResponseRetention = defaultResponseRetention
	}
	if o.RecordTimeout <= 0 {
		o.RecordTimeout = 10 * time.Second
	}
	if o.IntentDelay == 0 {
		o.IntentDelay = DefaultIntentDelay
	}
	if o.SettleDelay == 0 {
		o.SettleDelay = DefaultSettleDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Deployments == nil {
		o.Deployments = noMetrics{}
	}
	if o.Stages == nil {
		o.Stages = noStages{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Explore == 0 {
		o.Explore = 0.05
	}
	return o
}

// Deps are the ports the service consumes.
type Deps struct {
	Catalogue *domain.Catalogue
	Providers map[string]ports.Provider // by provider instance name, as the catalogue's deployments name them
	// Caps are the provider instances' account caps, by instance name; an
	// instance without an entry is unlimited. The limiter counts their
	// requests and tokens per minute.
	Caps map[string]domain.ProviderCaps
	// Breaker tunes the deployments' circuit breakers; zero fields mean
	// domain.DefaultBreaker's.
	Breaker domain.BreakerSettings
	Keys    ports.KeyStore
	Ledger  ports.SpendLedger
	Limiter ports.RateLimiter
	CallLog ports.CallLog
	// Responses keeps the Responses API's stored responses; nil means
	// none are stored (store is ignored, previous_response_id refused).
	Responses ports.ResponseStore
	// Tokens verifies callers' tokens of the identity provider and
	// Standings finds their user's and team's budgets and limits; nil
	// Tokens: only keys are accepted.
	Tokens    ports.TokenVerifier
	Standings ports.StandingBook
}

// routes are what a call is routed by: the catalogue, the providers its
// deployments name, their caps and the breakers' settings. They are one
// immutable value behind one pointer, so that a new catalogue can be
// swapped in at once while each call keeps the routes it started with.
type routes struct {
	catalogue *domain.Catalogue
	providers map[string]ports.Provider
	caps      map[string]domain.ProviderCaps
	breaker   domain.BreakerSettings
}

func newRoutes(deps Deps) *routes {
	b := deps.Breaker
	def := domain.DefaultBreaker()
	if b.Failures <= 0 {
		b.Failures = def.Failures
	}
	if b.Cooldown <= 0 {
		b.Cooldown = def.Cooldown
	}
	return &routes{catalogue: deps.Catalogue, providers: deps.Providers, caps: deps.Caps, breaker: b}
}

// Service is the corporate LLM gateway.
type Service struct {
	deps   Deps
	opts   Options
	routes atomic.Pointer[routes]
	router *router       // the deployments' health and load, across catalogues
	slots  chan struct{} // bounds concurrent upstream calls
	// settler applies the calls' settlements after their answers.
	settler *settler
	// throttle refuses client addresses that fail to authenticate too often.
	throttle *auththrottle.Throttle
	// sender is the ledger when it says when a reservation is sent
	// (ports.ReservationSender), found once here; nil when it cannot.
	sender ports.ReservationSender
	// ledgerFailing is set when the ledger's last reservation failed for
	// any reason but a budget's: until one succeeds again, every call
	// reserves before its provider is called, so that an outage of the
	// ledger does not send calls to providers that cannot be charged.
	ledgerFailing atomic.Bool
	// unconfirmed counts the reservations being ended, after their calls'
	// answers, in case the ledger holds them (call.endUnconfirmed).
	unconfirmed sync.WaitGroup

	// stopping is cancelled by EndCalls: every call in flight ends where it
	// is, is charged for what it consumed, and is recorded.
	stopping context.Context
	stop     context.CancelCauseFunc
}

// DefaultIntentDelay is how long a call runs before its intent is written.
// A call answered within it needs no intent: its record is its one durable
// write. It is also how long a crash can leave a call the provider began
// without an intent, which the next run on the same call log then finds by
// its reservation's Holder and charges all the same (docs/RELIABILITY.md).
const DefaultIntentDelay = 10 * time.Millisecond

// DefaultSettleDelay is the longest a call's settlement waits for others to
// join its batch. At a few calls at a time, a batch of its own per call
// would run beside the next call's reservation and compete with it for
// PostgreSQL and the CPU; under load, batches fill before it ends.
const DefaultSettleDelay = 10 * time.Millisecond

// The fault points of a call, where Options.FaultPoint is called; what a
// crash at each leaves is docs/RELIABILITY.md's table.
const (
	// FaultBeforeIntent is reached when the call's intent is about to be
	// written: the call holds its reservation, its provider has been
	// working for IntentDelay, and nothing of the call is in the call log.
	FaultBeforeIntent = "before-intent"
	// FaultReservationSent is reached once the reservation of a call that
	// reserves alongside its provider has left for the ledger
	// (ports.ReservationSender), before its provider is called.
	FaultReservationSent = "reservation-sent"
	// FaultBeforeAnswer is reached once the call's record, owing its
	// settlement, is durable, before the settler is handed the settlement
	// and before the answer is sent.
	FaultBeforeAnswer = "before-answer"
)

// errShuttingDown is the cause of the calls EndCalls ends.
var errShuttingDown = errors.New("tidygate is shutting down")

// NewService checks that every dependency is present and that every provider
// the catalogue names is configured.
func NewService(deps Deps, opts Options) (*Service, error) {
	var missing []string
	if deps.Catalogue == nil {
		missing = append(missing, "catalogue")
	}
	if deps.Keys == nil {
		missing = append(missing, "key store")
	}
	if deps.Ledger == nil {
		missing = append(missing, "spend ledger")
	}
	if deps.Limiter == nil {
		missing = append(missing, "rate limiter")
	}
	if deps.CallLog == nil {
		missing = append(missing, "call log")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("gateway: missing %s", strings.Join(missing, ", "))
	}
	if err := checkProviders(deps.Catalogue, deps.Providers); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	stopping, stop := context.WithCancelCause(context.Background())
	s := &Service{
		deps:     deps,
		opts:     opts,
		router:   newRouter(opts.Rand, opts.Now, opts.Deployments, max(opts.Explore, 0)),
		slots:    make(chan struct{}, opts.MaxConcurrentCalls),
		stopping: stopping,
		stop:     stop,
		settler:  newSettler(deps.Ledger, deps.CallLog.Acknowledge, opts.Logger, opts.RecordTimeout, opts.SettleDelay, opts.Stages),
		throttle: auththrottle.New(deps.Limiter, domain.LimitAddress, opts.AuthFailureLimit, opts.Now),
	}
	s.sender, _ = deps.Ledger.(ports.ReservationSender)
	s.routes.Store(newRoutes(deps))
	return s, nil
}

// checkProviders refuses a catalogue naming a provider that is not configured.
func checkProviders(cat *domain.Catalogue, providers map[string]ports.Provider) error {
	for _, name := range cat.Providers() {
		if providers[name] == nil {
			return fmt.Errorf("gateway: the catalogue uses provider %q, which is not configured", name)
		}
	}
	return nil
}

// Routing is what Reload swaps in: a catalogue, the providers its
// deployments name, their caps and the breakers' settings, as in Deps.
type Routing struct {
	Catalogue *domain.Catalogue
	Providers map[string]ports.Provider
	Caps      map[string]domain.ProviderCaps
	Breaker   domain.BreakerSettings
}

// Reload swaps in a new catalogue at once: calls from then on route by it,
// while each call in flight keeps the one it started with. The deployments'
// health and load carry over for the deployments both catalogues have. It
// refuses a catalogue naming a provider r does not configure, and then the
// old one keeps serving.
func (s *Service) Reload(r Routing) error {
	if r.Catalogue == nil {
		return errors.New("gateway: missing catalogue")
	}
	if err := checkProviders(r.Catalogue, r.Providers); err != nil {
		return err
	}
	s.routes.Store(newRoutes(Deps{Catalogue: r.Catalogue, Providers: r.Providers, Caps: r.Caps, Breaker: r.Breaker}))
	return nil
}

// EndCalls ends every call in flight, and refuses calls from then on, for a
// shutdown: a stream ends where it is, as if the upstream had stopped, and
// is charged for what it consumed; each call is settled and recorded before
// its method returns. The HTTP server calls it when its graceful drain runs
// out of patience, so that it can finish within its shutdown budget.
func (s *Service) EndCalls() { s.stop(errShuttingDown) }

// Authenticate returns the caller behind an API key secret or a token of
// the identity provider, presented from the client address from (see
// Options.AuthFailureLimit; empty: not throttled). A failure is a
// KindUnauthenticated error, counted against from; an address with too
// many failures is refused with a KindRateLimited error before its
// secret is looked at.
func (s *Service) Authenticate(ctx context.Context, secret, from string) (domain.Caller, error) {
	if err := s.throttle.Check(from); err != nil {
		return domain.Caller{}, err
	}
	c, err := s.authenticate(ctx, secret)
	if err != nil {
		return domain.Caller{}, s.throttle.Failed(ctx, from, err)
	}
	return c, nil
}

// authenticate returns the caller behind a secret.
func (s *Service) authenticate(ctx context.Context, secret string) (domain.Caller, error) {
	if domain.LooksLikeJWT(secret) {
		return s.signedIn(ctx, secret)
	}
	if !domain.LooksLikeKey(secret) {
		return domain.Caller{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key",
			Message: "invalid API key"}
	}
	return s.deps.Keys.CallerByKeyHash(ctx, domain.HashKey(secret))
}

// signedIn returns the caller behind a token of the identity provider:
// its user and team, that user's and team's budgets and limits, and the
// per-key limits of Options.SignedInLimits (see domain.SignedInCaller).
func (s *Service) signedIn(ctx context.Context, token string) (domain.Caller, error) {
	if s.deps.Tokens == nil || s.deps.Standings == nil {
		return domain.Caller{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_disabled",
			Message: "this gateway accepts no identity-provider tokens on the model endpoints; use an API key"}
	}
	id, err := s.deps.Tokens.VerifyToken(ctx, token)
	if err != nil {
		return domain.Caller{}, err
	}
	if id.User == "" || id.Team == "" {
		return domain.SignedInCaller(id, domain.Standing{}, s.opts.SignedInLimits)
	}
	st, err := s.deps.Standings.StandingOf(ctx, id.User, id.Team)
	if err != nil {
		return domain.Caller{}, err
	}
	return domain.SignedInCaller(id, st, s.opts.SignedInLimits)
}

// Models returns the models the caller may use.
func (s *Service) Models(c domain.Caller) []domain.Model {
	var out []domain.Model
	for _, m := range s.routes.Load().catalogue.Models() {
		if c.MayUse(m, m.Name) || mayUseAnAlias(c, m) {
			out = append(out, m)
		}
	}
	return out
}

func mayUseAnAlias(c domain.Caller, m domain.Model) bool {
	for _, a := range m.Aliases {
		if c.MayUse(m, a) {
			return true
		}
	}
	return false
}

// Usage returns the caller's usage report for the current month, with the
// settlements of every call answered before it applied.
func (s *Service) Usage(ctx context.Context, c domain.Caller) (domain.UsageReport, error) {
	if err := s.Settled(ctx); err != nil {
		return domain.UsageReport{}, domain.Wrap(domain.KindUnavailable, err, "the usage report waited too long for the last calls' settlements")
	}
	now := s.opts.Now()
	return s.deps.Ledger.Report(ctx, c, domain.PeriodMonth.Start(now), now)
}

// TokenCount is a count of a request's input tokens, and who counted them.
type TokenCount struct {
	Tokens int
	// ByProvider says that the provider counted them (ports.TokenCounter);
	// otherwise they are tidygate's estimate
	// (domain.ChatRequest.EstimatePromptTokens).
	ByProvider bool
}

// CountTokens counts the prompt tokens of req for a chat model the caller
// may use; n is the same request as the client sent it. It is under a
// call's policy (call.check): c's audit reason, the request, the model and
// the caller's right to it. The provider of the deployment that a call of
// the model would try first counts it, under the deployment's upstream
// name, when it counts requests of n's dialect (ports.TokenCounter); any
// other provider's model gets tidygate's estimate. It is how agents size a
// conversation before they send it, and it is not a call: it reserves
// nothing, charges no budget and no rate limit, tells the deployment's
// health nothing, and asks one provider once, with no retry and no
// fallback. A count the provider makes is recorded as a call is (call.count),
// an estimate is not, and a refusal is recorded as a call's is. The
// provider's failure is the answer, never an estimate in its place: its
// refusal of the request as the client's error, any other as an upstream
// error. A model none of whose deployments can take a call now is
// unavailable, as its call would be.
func (s *Service) CountTokens(ctx context.Context, c Call, req domain.ChatRequest, n domain.NativeRequest) (TokenCount, error) {
	c.Endpoint = domain.EndpointCountTokens
	k := s.newCall(c, &chatOp{req: req})
	if err := k.check(); err != nil {
		return TokenCount{}, k.refuse(ctx, err)
	}
	m := k.chain[0]
	d, ok := s.router.first(m, k.routes.caps)
	if !ok {
		return TokenCount{}, k.refuse(ctx, noDeployment(m))
	}
	counter, ok := k.routes.providers[d.Provider].(ports.TokenCounter)
	if !ok || !counter.CountsTokens(n.Dialect) {
		return TokenCount{Tokens: req.EstimatePromptTokens()}, nil
	}
	return k.count(ctx, counter, d, n)
}

// count has counter count n on deployment d and records the count as a
// call is recorded, before it is answered: who asked and why, the request
// as the content policy keeps it, the deployment asked, and the outcome,
// the tokens counted as the prompt's tokens at no cost. A call log that
// cannot take the record refuses the count before the provider is asked;
// one that fails to write it withholds the count, as a call's answer is.
func (k *call) count(ctx context.Context, counter ports.TokenCounter, d domain.Deployment, n domain.NativeRequest) (TokenCount, error) {
	logSlot, err := k.s.deps.CallLog.Admit()
	if err != nil {
		return TokenCount{}, k.refuse(ctx, err)
	}
	defer logSlot()
	m := k.chain[0]
	m.Provider, m.Upstream = d.Provider, d.Upstream
	k.res.Model, k.res.Attempts = m, 1
	k.rec.Provider, k.rec.UpstreamModel = m.Provider, m.Upstream
	tried := domain.Attempt{Provider: m.Provider, Model: m.Name, UpstreamModel: m.Upstream, Deployment: d.Name(), Start: k.s.opts.Now()}
	pctx, cancel := context.WithTimeout(ctx, k.s.opts.ProviderTimeout)
	defer cancel()
	n.Model = d.Upstream
	began := time.Now()
	tokens, err := counter.CountTokens(pctx, n)
	k.rec.ProviderTime = time.Since(began)
	k.recordAttempt(tried, err)
	if err != nil {
		err = upstreamFailure(k.res, err)
		k.rec.Outcome, k.rec.ErrorKind, k.rec.ErrorMessage = domain.OutcomeError, domain.KindOf(err), err.Error()
	} else {
		k.rec.Outcome, k.rec.Usage = domain.OutcomeOK, domain.Usage{PromptTokens: tokens}
	}
	bctx, cancelRecord := k.s.bookkeeping(ctx)
	defer cancelRecord()
	if rerr := k.record(bctx); rerr != nil {
		return TokenCount{}, recordFailure(rerr)
	}
	if err != nil {
		return TokenCount{}, err
	}
	return TokenCount{Tokens: tokens, ByProvider: true}, nil
}
