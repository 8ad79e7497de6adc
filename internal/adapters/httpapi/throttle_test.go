package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestAThrottledAddressIsRefusedInItsDialect serves the API over the real
// gateway with AuthFailureLimit 2: an address's third failure, and then
// its good key, are refused with 429 and Retry-After in the shape of the
// dialect asked; the refusals are counted, and neither they nor the log
// show the guessed key. Another address is not touched.
func TestAThrottledAddressIsRefusedInItsDialect(t *testing.T) {
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add(goodKey, domain.Caller{KeyID: "key-1", User: "alice", Team: "risk"})
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"mock": idleProvider{}},
		Keys: keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, gateway.Options{AuthFailureLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	counter := &refusalCounter{}
	h := httpapi.NewHandler(svc, httpapi.Options{Unauthenticated: counter, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	const guess = "tg-guessed-key-SECRET-00000000000"
	send := func(remote, path, key string) *httptest.ResponseRecorder {
		body := `{"model":"mock-chat","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.RemoteAddr = remote
		if path == "/v1/messages" {
			req.Header.Set("X-Api-Key", key)
			req.Header.Set("Anthropic-Version", "2023-06-01")
		} else {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("X-Audit-Reason", "throttle test")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 2 {
		if rec := send("198.51.100.9:4000", "/v1/chat/completions", guess); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, rec.Code, rec.Body)
		}
	}
	openai := send("198.51.100.9:4001", "/v1/chat/completions", guess)
	var oe struct {
		Error struct{ Type, Code, Message string }
	}
	if openai.Code != http.StatusTooManyRequests || openai.Header().Get("Retry-After") == "" ||
		json.Unmarshal(openai.Body.Bytes(), &oe) != nil || oe.Error.Type != "rate_limit_error" || oe.Error.Code != auththrottle.CodeTooManyFailures {
		t.Fatalf("the third failure: %d %v %s, want 429 %s with Retry-After", openai.Code, openai.Header(), openai.Body, auththrottle.CodeTooManyFailures)
	}
	anth := send("198.51.100.9:4002", "/v1/messages", goodKey)
	var ae struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if anth.Code != http.StatusTooManyRequests || anth.Header().Get("Retry-After") == "" ||
		json.Unmarshal(anth.Body.Bytes(), &ae) != nil || ae.Type != "error" || ae.Error.Type != "rate_limit_error" ||
		!strings.Contains(ae.Error.Message, "too many failed authentications") {
		t.Fatalf("the good key from the throttled address: %d %s, want 429 in Anthropic's shape", anth.Code, anth.Body)
	}
	resp := send("198.51.100.9:4003", "/v1/responses", goodKey)
	if resp.Code != http.StatusTooManyRequests || !strings.Contains(resp.Body.String(), auththrottle.CodeTooManyFailures) {
		t.Fatalf("Responses from the throttled address: %d %s", resp.Code, resp.Body)
	}
	if rec := send("198.51.100.10:4000", "/v1/chat/completions", guess); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d %s, want 401", rec.Code, rec.Body)
	}
	if n := counter.count(auththrottle.CodeTooManyFailures); n != 3 {
		t.Fatalf("%d throttled refusals counted, want 3", n)
	}
	for _, out := range []string{openai.Body.String(), anth.Body.String(), resp.Body.String(), logged.String()} {
		if strings.Contains(out, guess) || strings.Contains(out, goodKey) {
			t.Fatalf("a key appears in an answer or the log: %s", out)
		}
	}
	if !strings.Contains(logged.String(), auththrottle.CodeTooManyFailures) {
		t.Fatalf("the throttled refusals were not logged: %s", logged.String())
	}
}
