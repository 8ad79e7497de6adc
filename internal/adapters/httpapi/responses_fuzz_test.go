package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
)

// FuzzResponses sends arbitrary bodies to POST /v1/responses over a
// gateway that answers like a small agent: no body may produce a 5xx, and
// every answer is a Response object, an event stream that ends in
// response.completed, or an OpenAI error object.
func FuzzResponses(f *testing.F) {
	for _, seed := range []string{
		`{"model":"mock-chat","input":"Hi"}`,
		`{"model":"mock-chat","stream":true,"instructions":"s","input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":[{"type":"input_text","text":"x"},{"type":"input_image","image_url":"data:image/png;base64,AA=="}]}]}`,
		`{"model":"mock-chat","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,` +
			`"input":[{"role":"user","content":"x"},{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"t"}],"encrypted_content":"e"},` +
			`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
		`{"model":"mock-chat","input":"x","max_output_tokens":5,"text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}},"store":false}`,
	} {
		f.Add([]byte(seed))
	}
	h := httpapi.NewHandler(agentGateway(), httpapi.Options{MaxAgentBodyBytes: 8192, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/responses", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("X-Audit-Reason", "fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == "text/event-stream":
			events := strings.Split(strings.TrimSpace(rec.Body.String()), "\n\n")
			if !strings.HasPrefix(events[len(events)-1], "event: response.completed\n") {
				t.Fatalf("body %q: stream %q", body, rec.Body)
			}
		case rec.Code == http.StatusOK:
			var resp struct {
				Object string `json:"object"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.Object != "response" {
				t.Fatalf("body %q: response %q", body, rec.Body)
			}
		default:
			var e struct {
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Type == "" || e.Error.Message == "" {
				t.Fatalf("body %q: status %d with %q", body, rec.Code, rec.Body)
			}
		}
	})
}
