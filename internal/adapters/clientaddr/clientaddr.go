// Package clientaddr provides the client address that failed
// authentications are counted against, the one rule for every inbound
// adapter that throttles them (the model endpoints, the admin API, the
// console).
//
// The address is the connection's peer: tidygate trusts no forwarding
// header (X-Forwarded-For, Forwarded), which any client can write, so behind
// a proxy every client shares the proxy's address. An IPv6 peer is counted
// by its /64 network, the block one host or one site is usually given:
// otherwise a single machine could change address for every attempt and
// never be throttled.
package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
)

// Of returns the address r's failed authentications count against: the
// peer's IPv4 address ("192.0.2.7"), or its IPv6 /64 network
// ("2001:db8:1:2::/64"). A RemoteAddr that is not an IP address and port
// (a test's, a Unix socket's) is returned whole.
func Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip.Is4() {
		return host
	}
	if ip.Is4In6() {
		return ip.Unmap().String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}
