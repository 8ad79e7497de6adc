//go:build integration

package integration

import (
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestKillDuringTheUpstreamCallChargesTheReservation kills the service with
// SIGKILL while the provider works on a call whose intent is durable, and
// restarts it on the same journal: the call is recorded once, interrupted
// by a crash, and its reservation is settled at its whole amount, never
// released as free.
func TestKillDuringTheUpstreamCallChargesTheReservation(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	s := start(t, append(env, "MOCK_LATENCY=1h"))
	go func() { // never answered: the process dies first
		if resp, err := http.DefaultClient.Do(s.chatRequest()); err == nil {
			resp.Body.Close()
		}
	}()
	waitJournaled(t, s, 1) // the intent is on disk
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited

	var amount int64
	var state string
	queryRow(t, dsn, `SELECT amount_micros, state FROM tidygate_reservations`, &amount, &state)
	if state != "held" || amount <= 0 {
		t.Fatalf("after the kill: reservation %s of %d; want one held", state, amount)
	}
	start(t, env) // same journal directory, same database
	exactlyOnce(t, dsn, 1)
	l := readLedger(t, dsn)
	state, spent, held := l.reservation, l.used, l.held
	var interrupted string
	queryRow(t, dsn, `SELECT value FROM trace_request_metadata WHERE key = 'tidygate.interrupted'`, &interrupted)
	if state != "settled" || spent != amount || held != 0 || interrupted != "crash" {
		t.Fatalf("after the restart: reservation %s, usage %d, held %d, trace interrupted %q; want settled at the reservation %d, nothing held, interrupted by a crash",
			state, spent, held, interrupted, amount)
	}
}

// waitJournaled waits until the call log has committed n entries to its
// journal, as its metrics count them.
func waitJournaled(t *testing.T, s *service, n int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^tidygate_calllog_journaled_total (\d+)`)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		_, body := s.adminGet("/metrics")
		if m := re.FindSubmatch(body); m != nil {
			if got, _ := strconv.Atoi(string(m[1])); got >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the journal did not commit %d entries within a minute", n)
}
