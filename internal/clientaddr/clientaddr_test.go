package clientaddr_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tidygate/tidygate/internal/clientaddr"
)

func TestOf(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:51234", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"[::1]:8080", "::/64"},
		{"@", "@"},
		{"pipe:12", "pipe"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if got := clientaddr.Of(r); got != c.want {
			t.Errorf("Of(%q) = %q, want %q", c.remote, got, c.want)
		}
	}
}

// Two addresses of one /64 count as one; the next /64 is another client.
func TestOneIPv6NetworkIsOneClient(t *testing.T) {
	at := func(remote string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return clientaddr.Of(r)
	}
	if at("[2001:db8::1]:1") != at("[2001:db8::ffff:2]:2") {
		t.Error("two addresses of one /64 count apart")
	}
	if at("[2001:db8::1]:1") == at("[2001:db8:0:1::1]:1") {
		t.Error("two /64 networks count together")
	}
}

func BenchmarkOf(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:51234"
	b.ReportAllocs()
	for b.Loop() {
		_ = clientaddr.Of(r)
	}
}

// TestBehind checks which address a request is counted against behind the
// proxies the operator trusts, and that a client cannot choose its own.
func TestBehind(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"a trusted proxy forwards a client", "10.0.0.5:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"the client's own entries are ignored", "10.0.0.5:4000", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"through two trusted proxies", "10.0.0.5:4000", []string{"198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
		{"headers of several lines", "10.0.0.5:4000", []string{"1.2.3.4", "198.51.100.7"}, "198.51.100.7"},
		{"an IPv6 client", "[2001:db8:ffff::1]:443", []string{"2001:db8:1:2::9"}, "2001:db8:1:2::/64"},
		{"an untrusted peer's header is ignored", "203.0.113.9:4000", []string{"198.51.100.7"}, "203.0.113.9"},
		{"no header", "10.0.0.5:4000", nil, "10.0.0.5"},
		{"garbage where the client should be", "10.0.0.5:4000", []string{"1.2.3.4, not-an-ip"}, "10.0.0.5"},
		{"only trusted hops", "10.0.0.5:4000", []string{"10.9.9.9"}, "10.9.9.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got string
			h := clientaddr.Behind(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientaddr.Of(r) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != c.want {
				t.Errorf("counted against %q, want %q", got, c.want)
			}
			if r.RemoteAddr != c.remote {
				t.Errorf("the caller's request was changed: RemoteAddr %q", r.RemoteAddr)
			}
		})
	}
	// Without trusted proxies the handler is the one given.
	h := http.NotFoundHandler()
	if got := clientaddr.Behind(nil, h); fmt.Sprintf("%p", got) != fmt.Sprintf("%p", h) {
		t.Error("Behind(nil) wrapped the handler")
	}
}
