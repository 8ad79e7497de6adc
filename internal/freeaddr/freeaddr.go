// Package freeaddr picks free TCP addresses on the loopback interface for
// the processes that tests and the benchmark harnesses start.
package freeaddr

import "net"

// Loopback returns n distinct addresses "127.0.0.1:port" that were free a
// moment ago. Every listener is held open until all n are chosen, so no two
// are the same; another process may still take one before it is used.
func Loopback(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
