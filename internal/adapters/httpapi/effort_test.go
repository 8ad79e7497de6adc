package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestReasoningEffortReachesTheGateway: chat's reasoning_effort and
// Responses' reasoning.effort become the domain request's effort.
func TestReasoningEffortReachesTheGateway(t *testing.T) {
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"mock-chat","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"}`,
		"/v1/responses":        `{"model":"mock-chat","input":"x","reasoning":{"effort":"high","summary":"auto"}}`,
	} {
		gw := &fakeGateway{}
		r := newRig(t, gw, httpapi.Options{})
		if rec := r.do("POST", path, body); rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
		}
		gw.mu.Lock()
		chats := gw.chats
		gw.mu.Unlock()
		if len(chats) != 1 || chats[0].Thinking != (domain.Thinking{Effort: domain.EffortHigh}) {
			t.Errorf("%s: the gateway got %+v", path, chats)
		}
	}
}
