package gateway

import "time"

// Stage is a step on a call's path whose duration the gateway reports, so
// that an operator (and the benchmark) sees where a call's time goes.
type Stage int

// The stages, in the order a call meets them.
const (
	// StageReserve is one reservation of the call's worst case in the
	// ledger (a call whose budget refuses it may make a second, for a
	// budget fallback or after waiting for settlements).
	StageReserve Stage = iota
	// StageReserveSend is the part of a reservation made while the
	// provider works (a caller without budgets; see Options.ReserveFirst)
	// that the provider call waits for: until the ledger says the
	// reservation has left the process whole (ports.ReservationSender).
	// A call that reserves first, or whose ledger cannot say, has none.
	StageReserveSend
	// StageUpstream is the call's provider attempts, with their retries
	// and the pauses between them: for a stream, until its last event.
	StageUpstream
	// StageRecord is the call's record handed to the call log until the
	// log has made it durable, which the answer waits for.
	StageRecord
	// StageSettle is one batch of settlements applied by the ledger, off
	// the calls' response path.
	StageSettle
)

// Stages lists every stage, for a metrics backend to set up.
var Stages = []Stage{StageReserve, StageReserveSend, StageUpstream, StageRecord, StageSettle}

// String names the stage as the metrics label it: reserve, reserve_send,
// upstream, record or settle.
func (s Stage) String() string {
	switch s {
	case StageReserve:
		return "reserve"
	case StageReserveSend:
		return "reserve_send"
	case StageUpstream:
		return "upstream"
	case StageRecord:
		return "record"
	case StageSettle:
		return "settle"
	}
	return "unknown"
}

// StageMetrics is told how long each stage took, each time. cmd/app backs
// it with a Prometheus histogram.
type StageMetrics interface {
	ObserveStage(s Stage, d time.Duration)
}

// noStages is the StageMetrics used when none is given.
type noStages struct{}

func (noStages) ObserveStage(Stage, time.Duration) {}

// timed runs f and reports its duration as stage s.
func timed(m StageMetrics, s Stage, f func() error) error {
	began := time.Now()
	err := f()
	m.ObserveStage(s, time.Since(began))
	return err
}
