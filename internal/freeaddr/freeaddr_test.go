package freeaddr_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tidygate/tidygate/internal/freeaddr"
)

// TestLoopbackAddressesAreDistinct picks many addresses at once: all are on
// the loopback interface, with a port, and no two are the same. (Picking
// 200 by closing each listener before opening the next repeated an address
// in 9 of 10 tries on the development machine.)
func TestLoopbackAddressesAreDistinct(t *testing.T) {
	addrs, err := freeaddr.Loopback(200)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 200 {
		t.Fatalf("%d addresses, want 200", len(addrs))
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") || ap.Port() == 0 {
			t.Fatalf("%q is not 127.0.0.1 with a port (%v)", a, err)
		}
		if seen[a] {
			t.Fatalf("%s picked twice", a)
		}
		seen[a] = true
	}
}

// TestLoopbackAddressesAreFree listens on the addresses picked, both at
// once. (Only two: other tests running beside this one pick free ports too,
// and a port is everybody's again once Loopback returns.)
func TestLoopbackAddressesAreFree(t *testing.T) {
	addrs, err := freeaddr.Loopback(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		defer ln.Close()
	}
}
