package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestReasoningEffortReachesTheGateway: chat's reasoning_effort, Responses'
// reasoning.effort and Messages' output_config.effort become the domain
// request's effort.
func TestReasoningEffortReachesTheGateway(t *testing.T) {
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"mock-chat","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"}`,
		"/v1/responses":        `{"model":"mock-chat","input":"x","reasoning":{"effort":"high","summary":"auto"}}`,
		"/v1/messages":         `{"model":"mock-chat","max_tokens":5,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"x"}]}`,
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

// TestMessagesRefusesAnUnknownEffort: an effort that is none of the domain's
// is refused, naming output_config.effort.
func TestMessagesRefusesAnUnknownEffort(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	body := `{"model":"mock-chat","max_tokens":5,"output_config":{"effort":"extreme"},"messages":[{"role":"user","content":"x"}]}`
	msg := anthropicErrorOf(t, r.do("POST", "/v1/messages", body), http.StatusBadRequest, "invalid_request_error")
	if !strings.HasPrefix(msg, `output_config.effort "extreme"`) {
		t.Errorf("message = %q; want it to name output_config.effort", msg)
	}
}
