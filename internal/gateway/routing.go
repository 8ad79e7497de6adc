package gateway

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// The routing of one model's calls over its deployments. The router keeps,
// per deployment (provider/upstream), the calls in flight, a moving average
// of its latency, its circuit breaker and the time until which its provider
// asked it to wait (Retry-After); per provider instance, the calls in
// flight against its account's max_concurrency. This state outlives any
// one catalogue: a catalogue swapped in finds the health it left.

// The circuit breaker's states.
const (
	breakerClosed   = "closed"    // calls flow
	breakerOpen     = "open"      // cooling down: skipped until the cool-down ends
	breakerHalfOpen = "half-open" // the cool-down is over: one probe call at a time decides
)

// latencyAlpha is the weight of a new latency in a deployment's moving
// average: the last few calls dominate.
const latencyAlpha = 0.3

// DeploymentMetrics is told what happens to each deployment, for /metrics.
// cmd/app backs it with Prometheus; nil means none.
type DeploymentMetrics interface {
	// AttemptStarted counts an attempt entering deployment d.
	AttemptStarted(d domain.Deployment)
	// AttemptEnded counts an attempt leaving d: its outcome ("ok" or the
	// error kind's name) and its latency.
	AttemptEnded(d domain.Deployment, outcome string, latency time.Duration)
	// BreakerChanged reports d's circuit breaker's new state: "closed",
	// "open" or "half-open".
	BreakerChanged(d domain.Deployment, state string)
}

// noMetrics is the DeploymentMetrics used when none is given.
type noMetrics struct{}

func (noMetrics) AttemptStarted(domain.Deployment)                      {}
func (noMetrics) AttemptEnded(domain.Deployment, string, time.Duration) {}
func (noMetrics) BreakerChanged(domain.Deployment, string)              {}

// router holds the deployments' and provider instances' state.
type router struct {
	mu          sync.Mutex
	deployments map[string]*deployment // by domain.Deployment.Name
	inFlight    map[string]int         // calls in flight by provider instance
	rand        func() float64
	now         func() time.Time
	metrics     DeploymentMetrics
	explore     float64 // the share of latency-routed calls sent to a random deployment
}

// deployment is one deployment's state.
type deployment struct {
	inFlight   int
	latency    float64 // moving average, in seconds; valid once observed
	observed   bool
	failures   int // consecutive failures
	breaker    string
	openUntil  time.Time
	probing    bool      // a half-open probe is in flight
	retryAfter time.Time // the provider asked for no call before this
}

func newRouter(rand func() float64, now func() time.Time, metrics DeploymentMetrics, explore float64) *router {
	return &router{deployments: map[string]*deployment{}, inFlight: map[string]int{},
		rand: rand, now: now, metrics: metrics, explore: explore}
}

func (r *router) state(d domain.Deployment) *deployment {
	s, ok := r.deployments[d.Name()]
	if !ok {
		s = &deployment{breaker: breakerClosed}
		r.deployments[d.Name()] = s
	}
	return s
}

// route is what pick hands back: the deployment chosen and whether it is
// its breaker's half-open probe.
type route struct {
	d     domain.Deployment
	probe bool
}

// pick chooses the next deployment of m for a call that has tried the
// deployments in tried: one it has not tried if any is available, else any
// available one. A deployment is available when its breaker lets a call
// through (closed, or half-open with no probe in flight), its provider did
// not ask it to wait, and its provider instance is below its
// max_concurrency (caps, by instance). ok is false when none is. The
// chosen deployment's call is counted in flight until done is called.
func (r *router) pick(m domain.Model, tried map[string]bool, caps map[string]domain.ProviderCaps) (route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.next(m, tried, caps)
	if !ok {
		return route{}, false
	}
	d := m.Deployments[i]
	s := r.state(d)
	rt := route{d: d, probe: s.breaker == breakerHalfOpen && !s.probing}
	if rt.probe {
		s.probing = true
	}
	s.inFlight++
	r.inFlight[d.Provider]++
	r.metrics.AttemptStarted(d)
	return rt, true
}

// first returns the deployment of m that pick would choose for a call's
// first attempt, without taking it: no call in flight, no probe, no
// attempt reported. It is for asking the deployment's provider what is not
// a call (a token count), whose outcome tells nothing of its health. ok is
// false when none is available.
func (r *router) first(m domain.Model, caps map[string]domain.ProviderCaps) (domain.Deployment, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.next(m, nil, caps)
	if !ok {
		return domain.Deployment{}, false
	}
	return m.Deployments[i], true
}

// next is pick's choice: the index of the deployment of m it takes, or
// false when none is available. r.mu is held.
func (r *router) next(m domain.Model, tried map[string]bool, caps map[string]domain.ProviderCaps) (int, bool) {
	now := r.now()
	// A model with one deployment has nowhere else to send its calls: its
	// health does not keep them out (its attempts and its fallbacks do the
	// rest, as before deployments existed); its account's caps still do.
	health := len(m.Deployments) > 1
	var fresh, again []int
	for i, d := range m.Deployments {
		if !r.available(d, now, caps[d.Provider], health) {
			continue
		}
		if tried[d.Name()] {
			again = append(again, i)
		} else {
			fresh = append(fresh, i)
		}
	}
	candidates := fresh
	if len(candidates) == 0 {
		candidates = again
	}
	if len(candidates) == 0 {
		return 0, false
	}
	return r.choose(m, candidates), true
}

// release gives back a pick whose attempt was never made (the client left
// during the backoff before it): no outcome, no metrics.
func (r *router) release(rt route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leave(rt)
	r.metrics.AttemptEnded(rt.d, "not_made", 0)
}

// leave takes a picked call out of its deployment's and its provider's
// calls in flight, and returns the deployment's state. r.mu is held.
func (r *router) leave(rt route) *deployment {
	s := r.state(rt.d)
	s.inFlight--
	r.inFlight[rt.d.Provider]--
	if rt.probe {
		s.probing = false
	}
	return s
}

// available reports whether d may take a call now; an open breaker whose
// cool-down is over turns half-open here. Without health, only the caps
// count.
func (r *router) available(d domain.Deployment, now time.Time, caps domain.ProviderCaps, health bool) bool {
	s := r.state(d)
	if s.breaker == breakerOpen && !now.Before(s.openUntil) {
		s.breaker = breakerHalfOpen
		r.metrics.BreakerChanged(d, breakerHalfOpen)
	}
	switch {
	case !health:
	case s.breaker == breakerOpen, s.breaker == breakerHalfOpen && s.probing:
		return false
	case now.Before(s.retryAfter):
		return false
	case caps.MaxConcurrency > 0 && r.inFlight[d.Provider] >= caps.MaxConcurrency:
		return false
	}
	return true
}

// choose applies m's routing strategy to the candidates (indexes into
// m.Deployments, in the catalogue's order).
func (r *router) choose(m domain.Model, candidates []int) int {
	switch m.Routing {
	case domain.RoutingOrdered:
		return candidates[0]
	case domain.RoutingLeastBusy:
		return r.weighted(m, r.best(m, candidates, func(s *deployment) float64 { return float64(s.inFlight) }))
	case domain.RoutingLatency:
		var unobserved []int
		for _, i := range candidates {
			if !r.state(m.Deployments[i]).observed {
				unobserved = append(unobserved, i)
			}
		}
		switch {
		case len(unobserved) > 0: // learn each deployment's latency first
			return r.weighted(m, unobserved)
		case len(candidates) > 1 && r.rand() < r.explore:
			return candidates[min(int(r.rand()*float64(len(candidates))), len(candidates)-1)]
		}
		return r.weighted(m, r.best(m, candidates, func(s *deployment) float64 { return s.latency }))
	}
	return r.weighted(m, candidates)
}

// best returns the candidates with the lowest score.
func (r *router) best(m domain.Model, candidates []int, score func(*deployment) float64) []int {
	low := math.Inf(1)
	var out []int
	for _, i := range candidates {
		switch v := score(r.state(m.Deployments[i])); {
		case v < low:
			low, out = v, []int{i}
		case v == low:
			out = append(out, i)
		}
	}
	return out
}

// weighted picks one of the candidates at random, in proportion to their
// weights.
func (r *router) weighted(m domain.Model, candidates []int) int {
	total := 0
	for _, i := range candidates {
		total += m.Deployments[i].Weight
	}
	x := r.rand() * float64(total)
	for _, i := range candidates {
		x -= float64(m.Deployments[i].Weight)
		if x < 0 {
			return i
		}
	}
	return candidates[len(candidates)-1]
}

// outcome is how an attempt on a deployment ended, for its health.
type outcome struct {
	err        error         // nil when the deployment answered
	counts     bool          // the failure is the deployment's (not the client's, not a refused request)
	retryAfter time.Duration // the provider's Retry-After, if it sent one
	latency    time.Duration
}

// done ends an attempt picked by pick: the call leaves the deployment, and
// its outcome feeds the latency average, the breaker and Retry-After. A
// success closes the breaker; failures that count (breaker.Failures in a
// row, or a half-open probe's) open it for breaker.Cooldown.
func (r *router) done(rt route, o outcome, breaker domain.BreakerSettings) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.leave(rt)
	now := r.now()
	if o.retryAfter > 0 {
		s.retryAfter = now.Add(o.retryAfter)
	}
	switch {
	case o.err == nil:
		sec := o.latency.Seconds()
		if s.observed {
			s.latency = latencyAlpha*sec + (1-latencyAlpha)*s.latency
		} else {
			s.latency, s.observed = sec, true
		}
		s.failures = 0
		if s.breaker != breakerClosed {
			s.breaker = breakerClosed
			r.metrics.BreakerChanged(rt.d, breakerClosed)
		}
	case o.counts:
		s.failures++
		if s.breaker == breakerHalfOpen || s.breaker == breakerClosed && s.failures >= breaker.Failures {
			s.breaker, s.openUntil = breakerOpen, now.Add(breaker.Cooldown)
			r.metrics.BreakerChanged(rt.d, breakerOpen)
		}
	case rt.probe:
		// The probe told nothing (the client left): let another probe try.
	}
	r.metrics.AttemptEnded(rt.d, outcomeName(o.err), o.latency)
}

// outcomeName is an attempt's outcome as /metrics labels it.
func outcomeName(err error) string {
	if err == nil {
		return "ok"
	}
	return domain.KindOf(err).String()
}

// noDeployment is the error of a model none of whose deployments could
// take a call: every one cooling down, told to wait or at its account's
// concurrency cap.
func noDeployment(m domain.Model) error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "no_healthy_deployment", RetryAfter: time.Second,
		Message: fmt.Sprintf("no deployment of model %q can take a call now (cooling down, told to wait, or at capacity); retry shortly", m.Name)}
}
