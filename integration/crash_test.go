//go:build integration

package integration

import (
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// killedAt starts the service with its fault point set to point (the
// binary kills itself with SIGKILL when a call reaches it), sends one chat
// call and waits for the process to die of it. It fails the test when the
// call is answered instead, or the process ends otherwise.
func killedAt(t *testing.T, env []string, point string) {
	t.Helper()
	s := start(t, append(env, "TIDYGATE_FAULT_POINT="+point))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(s.chatRequest())
		if err != nil {
			answered <- 0 // the connection broke: the process died
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case code := <-answered:
		if code != 0 {
			t.Fatalf("the call answered %d; want the process killed at %s before any answer (is the binary built with -tags faultpoint?)", code, point)
		}
		<-s.exited
	case <-s.exited:
		if code := <-answered; code != 0 {
			t.Fatalf("the call answered %d after the process ended", code)
		}
	}
	var exit *exec.ExitError
	if !errors.As(s.exitErr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the process ended with %v; want it killed by SIGKILL at %s", s.exitErr, point)
	}
}

// TestKillAfterTheRecordBeforeTheAnswerSettlesTheRecordedCost kills the
// service with SIGKILL at the instant the call's record (owing its
// settlement) is durable, before the settler is handed the settlement and
// before the answer is sent, and restarts it on the same journal: the
// client got no answer, the call is recorded once as answered, and its
// reservation is settled at the cost its record holds, nothing held.
func TestKillAfterTheRecordBeforeTheAnswerSettlesTheRecordedCost(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	killedAt(t, env, gateway.FaultBeforeAnswer)
	var state string
	queryRow(t, dsn, `SELECT state FROM tidygate_reservations`, &state)
	if state != "held" {
		t.Fatalf("after the kill the reservation is %s; want held (its settlement was never handed to the ledger)", state)
	}

	start(t, env) // same journal directory, same database, no fault point
	exactlyOnce(t, dsn, 1)
	waitSettled(t, dsn)
	l := readLedger(t, dsn)
	state, spent, held, used := l.reservation, l.spent, l.held, l.used
	var status string
	queryRow(t, dsn, `SELECT status FROM `+callTraces+` t`, &status)
	recorded := recordedCost(t, dsn)
	if state != "settled" || status != "OK" || recorded <= 0 || used != recorded || held != 0 || (spent != 0 && spent != recorded) {
		t.Fatalf("after the restart: reservation %s, trace %s, usage %d, spend %d, held %d; want settled at the recorded cost %d, the trace OK, nothing held",
			state, status, used, spent, held, recorded)
	}
}

// TestKillOnceTheReservationIsSentChargesIt kills the service with SIGKILL
// at the instant a call that reserves alongside its provider (the dev key
// has no budgets) has written its reservation to PostgreSQL (the fault
// point reservation-sent: before the ledger's answer and before the
// provider is called). PostgreSQL commits the reservation it received
// whole, BEGIN to COMMIT, though nobody reads its answer, and the restart
// charges it like any hold its process left: settled at its whole
// reservation, recorded once as interrupted by a crash.
func TestKillOnceTheReservationIsSentChargesIt(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	killedAt(t, append(env, "MOCK_LATENCY=1h"), gateway.FaultReservationSent)
	var held int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		queryRow(t, dsn, `SELECT count(*) FROM tidygate_reservations WHERE state = 'held'`, &held)
		if held == 1 || time.Now().After(deadline) {
			break
		}
	}
	if held != 1 {
		t.Fatalf("%d reservations held after the kill; want the one sent before it", held)
	}
	var amount int64
	queryRow(t, dsn, `SELECT amount_micros FROM tidygate_reservations`, &amount)

	start(t, env) // same journal directory, same database, no fault point
	exactlyOnce(t, dsn, 1)
	waitSettled(t, dsn)
	l := readLedger(t, dsn)
	var used int64
	queryRow(t, dsn, `SELECT coalesce(sum(cost_micros), 0)::bigint FROM tidygate_usage WHERE user_id = 'dev' AND model = 'mock-chat'`, &used)
	var interrupted string
	queryRow(t, dsn, `SELECT value FROM trace_request_metadata WHERE key = 'tidygate.interrupted'`, &interrupted)
	if l.reservation != "settled" || amount <= 0 || used != amount || l.held != 0 || interrupted != "crash" {
		t.Fatalf("after the restart: reservation %s, usage %d, held %d, trace interrupted %q; want settled at the reservation %d, nothing held, interrupted by a crash",
			l.reservation, used, l.held, interrupted, amount)
	}
}

// TestKillBeforeTheIntentChargesTheReservation kills the service with
// SIGKILL while the provider works on a call whose intent is not yet
// durable (the fault point before-intent: the call has run for the
// intent's delay, and the journal holds nothing of it), and restarts it on
// the same journal: the hold, which only the ledger knew of, named by the
// journal's identity and the earlier run, is settled at its whole
// reservation (never released as free), recorded once as interrupted by a
// crash, and logged for reconciliation.
func TestKillBeforeTheIntentChargesTheReservation(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	killedAt(t, append(env, "MOCK_LATENCY=1h"), gateway.FaultBeforeIntent)
	var amount int64
	var state string
	queryRow(t, dsn, `SELECT amount_micros, state FROM tidygate_reservations`, &amount, &state)
	if state != "held" || amount <= 0 {
		t.Fatalf("after the kill: reservation %s of %d; want one held", state, amount)
	}

	s := start(t, env) // same journal directory, same database, no fault point
	exactlyOnce(t, dsn, 1)
	waitSettled(t, dsn)
	l := readLedger(t, dsn)
	state, spent, held := l.reservation, l.spent, l.held
	var used int64 // charged to the caller and model the reservation was for
	queryRow(t, dsn, `SELECT coalesce(sum(cost_micros), 0)::bigint FROM tidygate_usage WHERE user_id = 'dev' AND model = 'mock-chat'`, &used)
	var interrupted string
	queryRow(t, dsn, `SELECT value FROM trace_request_metadata WHERE key = 'tidygate.interrupted'`, &interrupted)
	if state != "settled" || used != amount || held != 0 || (spent != 0 && spent != amount) || interrupted != "crash" {
		t.Fatalf("after the restart: reservation %s, usage %d, spend %d, held %d, trace interrupted %q; want settled at the reservation %d, nothing held, interrupted by a crash",
			state, used, spent, held, interrupted, amount)
	}
	if !strings.Contains(s.Log(), "call interrupted by a crash before its intent was written") {
		t.Fatal("the restart did not log the charged hold for reconciliation")
	}
}
