//go:build faultpoint

package main

import (
	"os"
	"syscall"
)

// faultPointSetting names the gateway's fault point (gateway.FaultReservationSent,
// gateway.FaultBeforeIntent, gateway.FaultBeforeAnswer) at which a test
// build of tidygate kills itself.
// Only a binary built with the faultpoint tag (the integration tests') reads
// it; a production build has no fault points and ignores it.
const faultPointSetting = "TIDYGATE_FAULT_POINT"

// faultPoint returns what the gateway calls at its fault points: with
// TIDYGATE_FAULT_POINT naming one, the process sends itself SIGKILL when a
// call reaches it, as kill -9 would at that instant; nil when it names none.
func faultPoint() func(string) {
	at := os.Getenv(faultPointSetting)
	if at == "" {
		return nil
	}
	return func(point string) {
		if point == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal ends the process; nothing after the point runs
		}
	}
}
