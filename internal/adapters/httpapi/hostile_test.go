package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
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
