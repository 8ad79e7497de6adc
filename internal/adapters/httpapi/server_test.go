package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
)

func TestNewServerTimeouts(t *testing.T) {
	s := httpapi.NewServer(":0", http.NotFoundHandler(), httpapi.Timeouts{ReadHeader: time.Second, Read: 2 * time.Second, Idle: 3 * time.Second, Write: 4 * time.Second})
	if s.Addr != ":0" || s.ReadHeaderTimeout != time.Second || s.ReadTimeout != 2*time.Second || s.IdleTimeout != 3*time.Second || s.WriteTimeout != 0 {
		t.Errorf("server = %+v", s)
	}
	s = httpapi.NewServer(":0", http.NotFoundHandler(), httpapi.Timeouts{})
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("zero timeouts have no defaults: %+v", s)
	}
}

// serve runs the handler over gw behind NewServer on a loopback port.
func serve(t *testing.T, gw *fakeGateway, timeouts httpapi.Timeouts) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpapi.NewServer("", newRig(t, gw, httpapi.Options{}).h, timeouts)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func post(url, body string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("X-Audit-Reason", "unit test")
	return http.DefaultClient.Do(req)
}

// TestWriteTimeoutSparesStreams sets a write timeout that has always passed by
// the time a response is written: plain responses fail, streams do not.
func TestWriteTimeoutSparesStreams(t *testing.T) {
	url := serve(t, &fakeGateway{}, httpapi.Timeouts{Write: time.Nanosecond})
	if resp, err := post(url, helloBody); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("a plain response was written after its write deadline: %d", resp.StatusCode)
		}
	}
	resp, err := post(url, `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("stream cut by the write timeout: %v %q", err, body)
	}
	if resp.Trailer.Get("X-Tidygate-Model") != "mock-chat" {
		t.Errorf("trailers = %v", resp.Trailer)
	}
}

// TestHeadersOverTheBoundAreRefused: a request whose line and headers
// exceed MaxHeaderBytes gets a 431 before any handler runs; one just within
// it is served.
func TestHeadersOverTheBoundAreRefused(t *testing.T) {
	url := serve(t, &fakeGateway{}, httpapi.Timeouts{})
	for _, tc := range []struct {
		pad  int
		want int
	}{{httpapi.MaxHeaderBytes / 2, 200}, {httpapi.MaxHeaderBytes * 2, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(helloBody))
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("X-Audit-Reason", "unit test")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Padding", strings.Repeat("p", tc.pad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes of headers: %d, want %d", tc.pad, resp.StatusCode, tc.want)
		}
	}
}
