//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/pgtest"
	"github.com/tidygate/tidygate/internal/redistest"
)

// The tests here run three tidygate processes on one PostgreSQL and one
// Redis, as replicas behind a load balancer do, and hammer all three at once.

// window is RATE_LIMIT_WINDOW in these tests: a key's "per minute" limits
// count per 10 s, so that a test fits in one window.
const window = 10 * time.Second

// fleet starts three processes sharing dsn's database and the Redis at
// redisURL, with extra settings; env is the first one's, for the CLI.
func fleet(t *testing.T, dsn, redisURL string, extra ...string) (procs []*service, env []string) {
	t.Helper()
	for range 3 {
		e := append(baseEnv(t, dsn), "REDIS_URL="+redisURL, "RATE_LIMIT_WINDOW="+window.String(), "REPLICAS=3")
		e = append(e, extra...)
		procs = append(procs, start(t, e))
		if env == nil {
			env = e
		}
	}
	return procs, env
}

// hammer sends chat calls with key from workers goroutines per process,
// round-robin over the processes, until stop, and returns each answer's
// status, headers and body.
func hammer(t *testing.T, procs []*service, key, body string, workers int, stop time.Time) []answer {
	t.Helper()
	var mu sync.Mutex
	var out []answer
	var wg sync.WaitGroup
	for i := range workers * len(procs) {
		s := procs[i%len(procs)]
		wg.Go(func() {
			for time.Now().Before(stop) {
				req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/chat/completions", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("X-Audit-Reason", "limits across replicas")
				req.Header.Set("Content-Type", "application/json")
				began := time.Now()
				r, b := s.send(req)
				mu.Lock()
				out = append(out, answer{status: r.StatusCode, header: r.Header, body: b, took: time.Since(began)})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

type answer struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

// inOneWindow waits for the start of the next window and returns when to
// stop sending so that every call is admitted within that window: 2 s
// before its end, far more than any admission takes.
func inOneWindow() time.Time {
	next := time.Now().Truncate(window).Add(window)
	time.Sleep(time.Until(next) + 100*time.Millisecond)
	return next.Add(window - 2*time.Second)
}

// A key limited to 60 requests per window gets exactly 60 answers in a
// window from three processes hammered at once (fixed windows refill
// nothing within a window, and every call here falls in one), each with
// its own remaining count: the count is one, shared.
func TestRequestsPerWindowHoldAcrossReplicas(t *testing.T) {
	procs, env := fleet(t, pgtest.New(t), redistest.Start(t).URL)
	key := createKey(t, env, "--user", "rpm", "--team", "limits", "--rpm", "60")
	stop := inOneWindow()
	answers := hammer(t, procs, key, chatBody, 4, stop)
	remaining := map[string]int{}
	accepted, refused := 0, 0
	for _, a := range answers {
		switch a.status {
		case 200:
			accepted++
			remaining[a.header.Get("x-ratelimit-remaining-requests")]++
		case 429:
			refused++
			if a.header.Get("Retry-After") == "" || a.header.Get("x-ratelimit-remaining-requests") != "0" {
				t.Fatalf("a 429 without Retry-After or with requests remaining: %v", a.header)
			}
		default:
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	if accepted != 60 {
		t.Fatalf("%d calls accepted in one window across three processes (%d refused), want exactly 60", accepted, refused)
	}
	for i := range 60 {
		if n := remaining[fmt.Sprint(i)]; n != 1 {
			t.Fatalf("x-ratelimit-remaining-requests %d was answered %d times, want once (remaining: %v)", i, n, remaining)
		}
	}
	t.Logf("one window: %d accepted, %d refused", accepted, refused)
}

// A user limited to 30 requests per window (--user-rpm) gets exactly 30
// answers in a window over two of their keys, from three processes
// hammered at once through both keys: the user's count is one, shared by
// the replicas and by the keys; each refusal names the user.
func TestAUsersRequestsPerWindowHoldAcrossReplicasAndKeys(t *testing.T) {
	procs, env := fleet(t, pgtest.New(t), redistest.Start(t).URL)
	first := createKey(t, env, "--user", "shared", "--team", "limits", "--user-rpm", "30")
	second := createKey(t, env, "--user", "shared", "--team", "limits")
	stop := inOneWindow()
	var answers []answer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, key := range []string{first, second} {
		wg.Go(func() {
			got := hammer(t, procs, key, chatBody, 2, stop)
			mu.Lock()
			answers = append(answers, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	accepted, refused := 0, 0
	for _, a := range answers {
		switch a.status {
		case 200:
			accepted++
		case 429:
			refused++
			if !strings.Contains(string(a.body), `user \"shared\"`) || a.header.Get("x-ratelimit-limit-requests") != "30" {
				t.Fatalf("a 429 that does not name the user or report the user's limit: %s %v", a.body, a.header)
			}
		default:
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	if accepted != 30 || refused == 0 {
		t.Fatalf("%d calls of one user's two keys accepted in one window across three processes (%d refused), want exactly 30", accepted, refused)
	}
	t.Logf("one window, one user, two keys: %d accepted, %d refused", accepted, refused)
}

// A key limited to 2000 tokens per window never has more than 2000 tokens
// used in a window across three processes: each call holds its worst case
// (prompt plus max_tokens) at admission and gives back what it did not use.
func TestTokensPerWindowHoldAcrossReplicas(t *testing.T) {
	const tpm = 2000
	procs, env := fleet(t, pgtest.New(t), redistest.Start(t).URL)
	key := createKey(t, env, "--user", "tpm", "--team", "limits", "--tpm", fmt.Sprint(tpm))
	body := `{"model":"mock-chat","max_tokens":40,"messages":[{"role":"user","content":"count my tokens please"}]}`
	stop := inOneWindow()
	used, accepted, refused := 0, 0, 0
	for _, a := range hammer(t, procs, key, body, 4, stop) {
		switch a.status {
		case 200:
			var r struct {
				Usage struct {
					TotalTokens int `json:"total_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(a.body, &r); err != nil || r.Usage.TotalTokens <= 0 {
				t.Fatalf("answer without usage (%v): %s", err, a.body)
			}
			used += r.Usage.TotalTokens
			accepted++
		case 429:
			refused++
		default:
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	// At most the limit; and, since the calls never stopped coming, at
	// least half of it (three separate counts would allow three times it).
	if used > tpm || used < tpm/2 || refused == 0 {
		t.Fatalf("%d tokens used in one window by %d calls (%d refused), want at most %d and at least %d", used, accepted, refused, tpm, tpm/2)
	}
	t.Logf("one window: %d tokens used by %d calls, %d refused", used, accepted, refused)
}

// A key limited to 5 calls in flight never has 6 at its upstream, however
// the calls are spread over three processes.
func TestConcurrencyLimitHoldsAcrossReplicas(t *testing.T) {
	const limit = 5
	var inFlight, most atomic.Int64
	// Until the limit has been reached once, the upstream holds each call
	// until limit calls are there together: on a loaded machine the time a
	// call spends in the gateway outside its upstream could otherwise keep
	// the five admitted calls from ever overlapping at the upstream. After
	// that, the hammering goes on to show that a sixth never arrives.
	reached := make(chan struct{})
	var reachedOnce sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n >= limit {
			reachedOnce.Do(func() { close(reached) })
		}
		select {
		case <-reached:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(150 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c1","object":"chat.completion","created":1,"model":"slow","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`))
	}))
	t.Cleanup(up.Close)
	catalogue := t.TempDir() + "/catalogue.yaml"
	writeFile(t, catalogue, `models:
  - name: slow-chat
    type: chat
    provider: openai
    free: true
    max_output_tokens: 100
`)
	procs, env := fleet(t, pgtest.New(t), redistest.Start(t).URL, "CATALOGUE_FILE="+catalogue,
		"OPENAI_BASE_URL="+up.URL+"/v1", "OPENAI_API_KEY=sk-test", "PROVIDER_MAX_ATTEMPTS=1")
	key := createKey(t, env, "--user", "conc", "--team", "limits", "--max-concurrent", fmt.Sprint(limit))
	answers := hammer(t, procs, key, `{"model":"slow-chat","messages":[{"role":"user","content":"wait"}]}`, 4, time.Now().Add(6*time.Second))
	accepted, refused := 0, 0
	for _, a := range answers {
		switch {
		case a.status == 200:
			accepted++
		case a.status == 429 && strings.Contains(string(a.body), "key_concurrency_limit"):
			refused++
		default:
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	if m := most.Load(); m != limit {
		t.Fatalf("the upstream saw at most %d calls of the key in flight (%d accepted, %d refused), want %d: never more, and the limit reached", m, accepted, refused, limit)
	}
	t.Logf("%d accepted, %d refused at the limit of %d in flight", accepted, refused, limit)
}

// With Redis stopped, calls are refused with 503 in the caller's dialect
// (RATE_LIMIT_WHEN_UNAVAILABLE=deny, the default), quickly; when Redis is
// back, calls are answered again without a restart, and /metrics counted
// the outage.
func TestRedisStoppedAndBack(t *testing.T) {
	redis := redistest.Start(t)
	procs, _ := fleet(t, pgtest.New(t), redis.URL, "REDIS_TIMEOUT=300ms")
	s := procs[0]
	if r, b := s.do(http.MethodPost, "/v1/chat/completions", chatBody); r.StatusCode != 200 {
		t.Fatalf("before the outage: %d %s", r.StatusCode, b)
	}
	redis.Stop(t)
	// A generous bound: the point is that no answer waits on the dead
	// Redis for long, not how fast it is.
	const bound = 5 * time.Second
	for i := range 10 {
		began := time.Now()
		r, b := procs[i%3].do(http.MethodPost, "/v1/chat/completions", chatBody)
		if took := time.Since(began); took > bound {
			t.Fatalf("call %d with Redis down answered after %s, more than %s", i, took, bound)
		}
		if r.StatusCode != 503 || !strings.Contains(string(b), "rate_limiter_unavailable") || r.Header.Get("Retry-After") == "" {
			t.Fatalf("call %d with Redis down: %d %s, want 503 rate_limiter_unavailable with Retry-After", i, r.StatusCode, b)
		}
	}
	r, b := s.do(http.MethodPost, "/v1/messages", `{"model":"mock-chat","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
		"anthropic-version", "2023-06-01")
	// Anthropic's dialect answers "unavailable" as its API does: 529
	// overloaded_error.
	if r.StatusCode != 529 || !strings.Contains(string(b), `"type":"error"`) || !strings.Contains(string(b), "RATE_LIMIT_WHEN_UNAVAILABLE") {
		t.Fatalf("Anthropic dialect with Redis down: %d %s, want 529 in Anthropic's error shape, naming the setting", r.StatusCode, b)
	}
	redis.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range procs {
		for {
			r, b := p.do(http.MethodPost, "/v1/chat/completions", chatBody)
			if r.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not answered within 30 s of Redis's return: %d %s", r.StatusCode, b)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	_, metrics := s.adminGet("/metrics")
	for _, want := range []string{`tidygate_rate_limiter_redis_transitions_total{to="down"} 1`, `tidygate_rate_limiter_redis_up 1`,
		`tidygate_rate_limiter_decided_without_redis_total{decision="deny"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
	if n := strings.Count(s.Log(), "cannot reach Redis"); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}
}
