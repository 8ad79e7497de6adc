//go:build !faultpoint

package main

// faultPoint returns nil: a production build has no fault points (see
// faultpoint.go, built only with the faultpoint tag for the integration
// tests).
func faultPoint() func(string) { return nil }
