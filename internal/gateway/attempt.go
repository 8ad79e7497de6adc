package gateway

import (
	"context"
	"errors"
	"time"
)

// The causes with which tidygate itself ends an attempt.
var (
	errNoFirstEvent  = errors.New("the provider sent nothing within PROVIDER_TIMEOUT")
	errStreamTimeout = errors.New("the stream outlasted PROVIDER_STREAM_TIMEOUT")
	errNotReserved   = errors.New("the call's reservation, made while the provider worked, failed")
)

// attempt is the context of one provider call and the clocks that bound it.
//
// A non-streamed call is bounded by ProviderTimeout and is detached from the
// client: when the client gives up, the provider keeps working (and
// charging), so tidygate lets it finish and charges what it reports. A
// stream is bound to the client, since nobody else reads it; it must start
// within ProviderTimeout and end within StreamTimeout. A shutdown
// (Service.EndCalls) ends both.
type attempt struct {
	ctx        context.Context
	cancel     context.CancelCauseFunc
	stopClock  context.CancelFunc // releases the deadline's timer
	firstEvent *time.Timer        // streams: ends the attempt if nothing arrives in time
	begun      bool               // a stream's first event has arrived
	hold       *holding           // the call's reservation while it is made alongside the attempt
	answering  string             // the catalogue name of the model answering, which every chunk names
	unlink     func() bool        // stops following the service's shutdown
}

func (s *Service) newAttempt(ctx context.Context, stream bool) *attempt {
	a := &attempt{}
	var bounded context.Context
	if stream {
		bounded, a.stopClock = context.WithTimeoutCause(ctx, s.opts.StreamTimeout, errStreamTimeout)
	} else {
		bounded, a.stopClock = context.WithTimeout(context.WithoutCancel(ctx), s.opts.ProviderTimeout)
	}
	a.ctx, a.cancel = context.WithCancelCause(bounded)
	if stream {
		a.firstEvent = time.AfterFunc(s.opts.ProviderTimeout, a.noFirstEvent)
	}
	a.unlink = context.AfterFunc(s.stopping, a.shutDown)
	return a
}

func (a *attempt) noFirstEvent() { a.cancel(errNoFirstEvent) }
func (a *attempt) shutDown()     { a.cancel(errShuttingDown) }

// begin lets an event of the stream through to the client. The first
// event ends the wait for a first event: the provider has answered in
// time, and from then on only StreamTimeout bounds the stream. Every event
// then waits, if need be, for the call's reservation made alongside:
// nothing of an answer reaches the client before its reservation is held,
// and the ledger's time is not the provider's. When the ledger refused
// it, begin ends the attempt (errNotReserved) and returns the ledger's
// error.
func (a *attempt) begin() error {
	if !a.begun {
		a.begun = true
		if a.firstEvent != nil {
			a.firstEvent.Stop()
		}
	}
	if err := a.hold.wait(); err != nil {
		a.cancel(errNotReserved)
		return err
	}
	return nil
}

// cause returns why the attempt's context ended, or nil while it has not.
// A stream that ran out of time before its first event has sent nothing
// within PROVIDER_TIMEOUT, whichever clock ended it.
func (a *attempt) cause() error {
	if a.ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(a.ctx)
	if errors.Is(cause, errStreamTimeout) && !a.begun {
		return errNoFirstEvent
	}
	return cause
}

// end releases the attempt's timers and context.
func (a *attempt) end() {
	if a.firstEvent != nil {
		a.firstEvent.Stop()
	}
	a.unlink()
	a.cancel(context.Canceled)
	a.stopClock()
}
