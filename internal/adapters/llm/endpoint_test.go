package llm_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
)

// TestNewHTTPClientWithHeadersAndProxy sends a request through a client
// with fixed headers and an explicit proxy: the proxy receives the request
// for the upstream's URL, with the instance's headers beside the request's
// own, which win.
func TestNewHTTPClientWithHeadersAndProxy(t *testing.T) {
	var got *http.Request
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(proxy.Close)
	c, err := llm.NewHTTPClientWith(llm.ClientOptions{ProxyURL: proxy.URL, ResponseHeaderTimeout: time.Minute,
		Headers: http.Header{"X-Org": {"org-1"}, "X-Own": {"instance"}}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.invalid/v1/models", nil)
	req.Header.Set("X-Own", "request")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got == nil || got.URL.String() != "http://upstream.invalid/v1/models" || got.Header.Get("X-Org") != "org-1" || got.Header.Get("X-Own") != "request" {
		t.Fatalf("the proxy saw %+v", got)
	}
	if req.Header.Get("X-Org") != "" {
		t.Error("the caller's request was modified")
	}
	for _, o := range []llm.ClientOptions{{ProxyURL: "proxy:3128"}, {CAFile: "/nonexistent/ca.pem"}} {
		if _, err := llm.NewHTTPClientWith(o); err == nil {
			t.Errorf("%+v was accepted", o)
		}
	}
}

// TestBound bounds a call by the endpoint's timeout unless the caller's
// deadline comes first.
func TestBound(t *testing.T) {
	e := llm.Endpoint{Timeout: time.Minute}
	ctx, cancel := e.Bound(context.Background())
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > time.Minute || time.Until(deadline) < 50*time.Second {
		t.Errorf("no deadline of its own: the bound's is %v, %v", deadline, ok)
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("cancel left the bounded context running")
	}
	parent, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	if ctx, cancel := e.Bound(parent); ctx != parent {
		t.Error("a sooner deadline of the caller's was bounded again")
	} else {
		cancel()
	}
	far, stop2 := context.WithTimeout(context.Background(), time.Hour)
	defer stop2()
	ctx, cancel = e.Bound(far)
	defer cancel()
	if deadline, _ := ctx.Deadline(); time.Until(deadline) > time.Minute {
		t.Errorf("a later deadline of the caller's was kept: %v", deadline)
	}
}
