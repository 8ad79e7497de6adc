// Package clientaddr provides the client address that failed
// authentications are counted against, the one rule for every inbound
// adapter that throttles them (the model endpoints, the admin API, the
// console).
//
// The address is the connection's peer. A forwarding header, which any
// client can write, is believed only from the proxies the operator names
// (TRUSTED_PROXIES, applied by Behind): behind a load balancer that is not
// named, every client shares its address. An IPv6 peer is counted by its
// /64 network, the block one host or one site is usually given: otherwise
// a single machine could change address for every attempt and never be
// throttled.
package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind returns next with each request's RemoteAddr set to the client a
// trusted proxy forwarded it for: when the connection's peer is in one of
// trusted, the client is the last address of X-Forwarded-For that is not
// itself in trusted (each proxy appends the address it was reached from,
// so the addresses left of the first untrusted one are the client's to
// write and are ignored). A request from any other peer, or whose header
// holds something that is not an IP address where the client should be,
// keeps its peer. With no trusted proxies next is returned as it is.
func Behind(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := forwardedFor(trusted, r); ok {
			r2 := new(http.Request)
			*r2 = *r
			r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor returns the client a trusted peer forwarded r for.
func forwardedFor(trusted []netip.Prefix, r *http.Request) (netip.Addr, bool) {
	peer, ok := peerOf(r)
	if !ok || !within(trusted, peer) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0 && within(trusted, client); i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		client = ip.Unmap()
	}
	return client, client != peer
}

func peerOf(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	return ip.Unmap(), err == nil
}

func within(trusted []netip.Prefix, ip netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

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
