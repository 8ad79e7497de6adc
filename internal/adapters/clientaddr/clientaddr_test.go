package clientaddr_test

import (
	"net/http/httptest"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/clientaddr"
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
