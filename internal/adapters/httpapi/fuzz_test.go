package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// FuzzHandler sends arbitrary bodies to the POST endpoints over a gateway
// that always succeeds: no body may produce a 5xx, and every answer is
// either a well-formed success or an OpenAI error object. Seeds: testdata/fuzz.
func FuzzHandler(f *testing.F) {
	h := httpapi.NewHandler(&fakeGateway{}, httpapi.Options{MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, embeddings bool, body []byte) {
		path := "/v1/chat/completions"
		if embeddings {
			path = "/v1/embeddings"
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("X-Audit-Reason", "fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Request-Id") == "" || !overheadPattern.MatchString(rec.Header().Get("X-Tidygate-Overhead-Ms")) &&
			rec.Header().Get("Trailer") == "" {
			t.Fatalf("body %q: headers %v", body, rec.Header())
		}
		switch {
		case rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == "text/event-stream":
			if !strings.HasSuffix(rec.Body.String(), "data: [DONE]\n\n") {
				t.Fatalf("body %q: stream %q", body, rec.Body)
			}
		case rec.Code == http.StatusOK:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body %q: response %q", body, rec.Body)
			}
		default:
			var e struct {
				Error *apiError `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("body %q: status %d with %q", body, rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkChat measures the handler's own cost for a small non-streaming
// chat call: authentication, decoding, validation, encoding and headers.
// One request and one response writer serve every iteration (the body's
// reader rewound, the headers emptied), so that the figures are the
// handler's alone, not the test's building of a request and a recorder.
func BenchmarkChat(b *testing.B) {
	h := httpapi.NewHandler(&benchGateway{}, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	body := `{"model":"mock-chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":64,"temperature":0.2}`
	in := strings.NewReader(body)
	req := httptest.NewRequest("POST", "/v1/chat/completions", in)
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("X-Audit-Reason", "benchmark")
	req.Header.Set("Content-Type", "application/json")
	w := &benchWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		in.Reset(body)
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d: %s", w.status, w.body.Bytes())
		}
	}
}

// benchWriter is a response writer that BenchmarkChat reuses: it keeps the
// status and the body, and allocates nothing once its map and buffer have
// grown to a response's size.
type benchWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.status = 0
	w.body.Reset()
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// benchGateway answers every chat at once and records nothing, so that the
// benchmark measures the handler alone.
type benchGateway struct{ fakeGateway }

// ChatNative answers in place of the fake's, which keeps every call.
func (*benchGateway) ChatNative(context.Context, gateway.Call, domain.ChatRequest, gateway.Native, func(domain.ChatChunk) error) (gateway.ChatResult, error) {
	return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{Content: "Hello.", FinishReason: "stop",
		Usage: domain.Usage{PromptTokens: 12, CompletionTokens: 2}}}, nil
}
