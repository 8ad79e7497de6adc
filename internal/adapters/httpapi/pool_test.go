package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// TestCallsKeepTheirOwnBodies sends calls of different sizes from several
// goroutines at once, so that the buffers bodies are read into and the
// responses encoded in are reused between them while the gateway holds
// each call's body and request: every call's body, strings and raw values
// must stay its own after the others have run (run it with -race).
func TestCallsKeepTheirOwnBodies(t *testing.T) {
	type seen struct {
		body []byte
		req  domain.ChatRequest
	}
	var mu sync.Mutex
	kept := map[string]seen{}
	gw := &fakeGateway{native: func(_ context.Context, req domain.ChatRequest, n gateway.Native) (gateway.ChatResult, error) {
		mu.Lock()
		kept[req.User] = seen{n.Request.Body, req}
		mu.Unlock()
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{Content: req.Messages[0].Content}}, nil
	}}
	rig := newRig(t, gw, httpapi.Options{})
	body := func(id string) string {
		text := strings.Repeat(id+" ", len(id)*7)
		return fmt.Sprintf(`{"model":"mock-chat","user":%q,"messages":[{"role":"user","content":%q}],`+
			`"tools":[{"type":"function","function":{"name":"f","parameters":{"id":%q}}}]}`, id, text, id)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				id := fmt.Sprintf("g%d-%s", g, strings.Repeat("x", (g*40+i)%23))
				rec := rig.do("POST", "/v1/chat/completions", body(id))
				var resp struct {
					Choices []struct {
						Message struct{ Content string } `json:"message"`
					} `json:"choices"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); rec.Code != http.StatusOK || err != nil || len(resp.Choices) != 1 ||
					resp.Choices[0].Message.Content != strings.Repeat(id+" ", len(id)*7) {
					t.Errorf("call %s: %d %s", id, rec.Code, rec.Body)
				}
			}
		})
	}
	wg.Wait()
	if len(kept) != 8*23 { // 23 sizes a goroutine
		t.Fatalf("%d distinct calls kept", len(kept))
	}
	for id, s := range kept {
		if string(s.body) != body(id) {
			t.Errorf("call %s: its body changed after the call", id)
		}
		if s.req.Messages[0].Content != strings.Repeat(id+" ", len(id)*7) || string(s.req.Tools[0].Parameters) != fmt.Sprintf(`{"id":%q}`, id) {
			t.Errorf("call %s: its decoded request changed after the call", id)
		}
	}
}
