package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// send serves req as it is, headers included.
func (r *rig) send(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// chatRequest is a chat call with the good key and an audit reason.
func chatRequest(body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("X-Audit-Reason", "unit test")
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestDuplicateCredentialAndReasonHeadersAreRefused(t *testing.T) {
	for _, name := range []string{"Authorization", "X-Audit-Reason"} {
		t.Run(name, func(t *testing.T) {
			gw := &fakeGateway{}
			r := newRig(t, gw, httpapi.Options{})
			req := chatRequest(helloBody)
			req.Header.Add(name, req.Header.Get(name)) // the same value twice is still two headers
			e := errorOf(t, r.send(req), 400)
			if str(e.Code) != "duplicate_header" || !strings.Contains(e.Message, name) {
				t.Errorf("400 = %+v, want code duplicate_header naming %s", e, name)
			}
			if len(gw.chats) != 0 {
				t.Error("the gateway was called")
			}
		})
	}
}

func TestDuplicateJSONKeysAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		"top level":        `{"model":"mock-chat","model":"pricey-chat","messages":[{"role":"user","content":"Hi"}]}`,
		"in a message":     `{"model":"mock-chat","messages":[{"role":"user","content":"Hi","content":"Bye"}]}`,
		"escaped spelling": `{"model":"mock-chat","mod\u0065l":"pricey-chat","messages":[{"role":"user","content":"Hi"}]}`,
		"deep":             `{"model":"mock-chat","messages":[{"role":"user","content":"Hi"}],"metadata":{"a":{"b":[{"c":1,"c":2}]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			gw := &fakeGateway{}
			r := newRig(t, gw, httpapi.Options{})
			e := errorOf(t, r.send(chatRequest(body)), 400)
			if str(e.Code) != "duplicate_key" || !strings.Contains(e.Message, "duplicate key") {
				t.Errorf("400 = %+v", e)
			}
			if len(gw.chats) != 0 {
				t.Error("the gateway was called")
			}
		})
	}
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	e := errorOf(t, r.do("POST", "/v1/embeddings", `{"model":"mock-embed","input":"a","input":"b"}`), 400)
	if str(e.Code) != "duplicate_key" || !strings.Contains(e.Message, `"input"`) {
		t.Errorf("embeddings 400 = %+v", e)
	}
	// The same key in sibling objects is not a duplicate.
	ok := `{"model":"mock-chat","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"Bye"}]}`
	if rec := r.do("POST", "/v1/chat/completions", ok); rec.Code != 200 {
		t.Errorf("sibling objects with the same keys: %d %s", rec.Code, rec.Body)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestContentEncoding(t *testing.T) {
	gw := &fakeGateway{}
	r := newRig(t, gw, httpapi.Options{MaxBodyBytes: 4 << 10})
	req := chatRequest(string(gzipped(t, []byte(helloBody))))
	req.Header.Set("Content-Encoding", "gzip")
	if rec := r.send(req); rec.Code != 200 || len(gw.chats) != 1 || gw.chats[0].Model != "mock-chat" {
		t.Fatalf("gzip body: %d %s", rec.Code, rec.Body)
	}
	// A bomb: under 4 KiB of gzip that inflates to 1 MiB, far beyond the 4 KiB limit.
	bomb := gzipped(t, append([]byte(`{"model":"mock-chat","messages":[],"x":"`), bytes.Repeat([]byte("a"), 1<<20)...))
	if len(bomb) >= 4<<10 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	req = chatRequest(string(bomb))
	req.Header.Set("Content-Encoding", "gzip")
	if e := errorOf(t, r.send(req), 413); !strings.Contains(e.Message, "after decompression") {
		t.Errorf("gzip bomb: %+v", e)
	}
	req = chatRequest("not gzip at all")
	req.Header.Set("Content-Encoding", "gzip")
	if e := errorOf(t, r.send(req), 400); !strings.Contains(e.Message, "gzip") {
		t.Errorf("broken gzip: %+v", e)
	}
	for _, enc := range []string{"br", "deflate", "gzip, gzip", "zstd"} {
		req = chatRequest(helloBody)
		req.Header.Set("Content-Encoding", enc)
		if e := errorOf(t, r.send(req), 415); !strings.Contains(e.Message, "Content-Encoding") {
			t.Errorf("%s: %+v", enc, e)
		}
	}
	req = chatRequest(helloBody)
	req.Header.Set("Content-Encoding", "identity")
	if rec := r.send(req); rec.Code != 200 {
		t.Errorf("identity: %d %s", rec.Code, rec.Body)
	}
}

// TestSlowBodyIs408 sends the headers and part of a body, then stalls past
// the server's read timeout: the answer is 408, not a 400 about the body.
func TestSlowBodyIs408(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(ln.Addr().String(), newRig(t, &fakeGateway{}, httpapi.Options{}).h, httpapi.Timeouts{Read: 300 * time.Millisecond})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"X-Audit-Reason: unit test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		goodKey, len(helloBody), helloBody[:10])
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request_timeout") {
		t.Fatalf("slow body: %d %s", resp.StatusCode, b)
	}
}

// TestHeadModels answers HEAD /v1/models and /v1/models/{model} as GET,
// without a body.
func TestHeadModels(t *testing.T) {
	srv := httptest.NewServer(newRig(t, &fakeGateway{}, httpapi.Options{}).h)
	t.Cleanup(srv.Close)
	for path, want := range map[string]int{"/v1/models": 200, "/v1/models/mock-chat": 200, "/v1/models/gpt-nope": 404} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+goodKey)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || len(b) != 0 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("HEAD %s: %d %q %v; want %d", path, resp.StatusCode, b, resp.Header, want)
		}
	}
}

// TestOverheadExcludesRetryBackoff: pauses between retries are waiting, not
// tidygate's own work.
func TestOverheadExcludesRetryBackoff(t *testing.T) {
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{Result: gateway.Result{ProviderTime: 30 * time.Millisecond, Backoff: 50 * time.Millisecond}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{Now: stepClock(time.Unix(1_700_000_000, 0), 100*time.Millisecond),
		NewRequestID: func() string { return "fixed" }})
	if got := r.do("POST", "/v1/chat/completions", helloBody).Header().Get("X-Tidygate-Overhead-Ms"); got != "20" {
		t.Errorf("overhead = %q, want 20 (100 - 30 provider - 50 backoff)", got)
	}
}

// TestAnErrorQuotingAHugeValueStaysSmall: a message that quotes what the
// client sent (here a megabyte) is cut, in the answer of either dialect and
// in the log line, so that neither grows with the request.
func TestAnErrorQuotingAHugeValueStaysSmall(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB, two bytes a character
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{}, domain.ModelNotFound(huge)
	}}
	for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
		r := newRig(t, gw, httpapi.Options{})
		body := helloBody
		if path == "/v1/messages" {
			body = `{"model":"mock-chat","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}`
		}
		rec := r.do("POST", path, body)
		if rec.Code != 404 || rec.Body.Len() > 2048 || !strings.Contains(rec.Body.String(), "éé…") {
			t.Errorf("%s: %d, %d bytes: %.200s", path, rec.Code, rec.Body.Len(), rec.Body)
		}
		if log := r.logged(); len(log) > 4096 || !strings.Contains(log, "request failed") {
			t.Errorf("%s: the log line has %d bytes: %.200s", path, len(log), log)
		}
	}
}

// TestAHugeUnknownPathStaysSmallInTheLog: an unknown path of half a
// megabyte, sent without a key, is answered and logged in a few kilobytes.
func TestAHugeUnknownPathStaysSmallInTheLog(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	rec := r.send(httptest.NewRequest(http.MethodGet, "/v1/"+strings.Repeat("a", 1<<19), nil))
	if rec.Code != 404 || rec.Body.Len() > 2048 {
		t.Errorf("%d, %d bytes: %.200s", rec.Code, rec.Body.Len(), rec.Body)
	}
	if log := r.logged(); len(log) > 4096 || !strings.Contains(log, "request failed") {
		t.Errorf("the log line has %d bytes: %.200s", len(log), log)
	}
}
