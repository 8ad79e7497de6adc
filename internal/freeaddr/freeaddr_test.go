package freeaddr_test

import (
	"net"
	"testing"

	"github.com/tidygate/tidygate/internal/freeaddr"
)

// TestLoopbackAddressesAreDistinctAndFree picks many addresses at once and
// listens on every one of them, all at the same time. (Picking 200 by
// closing each listener before opening the next repeated an address in 9
// of 10 tries on the development machine.)
func TestLoopbackAddressesAreDistinctAndFree(t *testing.T) {
	addrs, err := freeaddr.Loopback(200)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 200 {
		t.Fatalf("%d addresses, want 200", len(addrs))
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s picked twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		defer ln.Close()
	}
}
