// Package ports declares the small interfaces the gateway consumes: model
// providers, the key store, the spend ledger, the rate limiter, the call
// log and the response store. "Ports" here means interfaces; the adapters under internal/adapters
// implement them and cmd/app wires one to each.
//
// Every method returns *domain.Error values (or wraps them) so that the HTTP
// edge can map failures without knowing the adapter: a database that cannot
// hand out a connection in time is domain.KindUnavailable, an unknown key is
// domain.KindUnauthenticated, a provider failure is domain.KindUpstream.
package ports

import (
	"context"
	"fmt"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// Provider calls one LLM provider. The request's Model is already the
// provider's own model name, and a chat request's MaxTokens is always set.
//
// Errors are classified for the retry policy: domain.KindUpstream,
// domain.KindRateLimited and domain.KindUnavailable are retryable;
// domain.KindInvalid (the provider refused the request itself) is not.
type Provider interface {
	Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error)
	// ChatStream calls emit for each chunk in order and returns the assembled
	// response, whose Usage is the provider's final count. It stops at the
	// first error emit returns.
	ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error)
	Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error)
}

// PassThrough is what a Provider may do besides: take a request in its own
// dialect as the client sent it, so that fields tidygate does not know and
// beta headers reach the provider, and answer with the provider's own bytes.
// The gateway finds it by type assertion and uses it for a request the edge
// has in a dialect the provider accepts; any other request is translated
// through Chat and ChatStream.
type PassThrough interface {
	// PassesThrough reports whether the provider takes requests of dialect
	// d as they are.
	PassesThrough(d domain.Dialect) bool
	// Native sends req. A stream's events go to emit in order, and Native
	// stops at the first error emit returns; the response's Usage is the
	// provider's final count. Errors are classified as Chat's are, and a
	// stream that ends before its last event is a domain.KindUpstream error.
	Native(ctx context.Context, req domain.NativeRequest, emit func(domain.NativeEvent) error) (domain.NativeResponse, error)
}

// TokenCounter is what a Provider may do besides: count the input tokens
// of a request in its own dialect as it bills them (documents, tools and
// images included), without answering it. The gateway finds it by type
// assertion on the provider instance of the deployment a call would pick,
// and estimates the count itself for any other.
type TokenCounter interface {
	// CountsTokens reports whether the provider counts requests of
	// dialect d.
	CountsTokens(d domain.Dialect) bool
	// CountTokens returns the input tokens of req, a request the client
	// sent to its dialect's token-counting endpoint, sent with req.Model as
	// its model. Errors are classified as Chat's are.
	CountTokens(ctx context.Context, req domain.NativeRequest) (int, error)
}

// KeyStore finds the caller behind an API key.
type KeyStore interface {
	// CallerByKeyHash returns the caller of the active key with this hash
	// (domain.HashKey of the secret), or a domain.KindUnauthenticated error
	// for an unknown or revoked key.
	CallerByKeyHash(ctx context.Context, hash string) (domain.Caller, error)
}

// TokenVerifier verifies bearer tokens of the corporate identity provider
// (single sign-on), so that a caller may use one in place of a key.
type TokenVerifier interface {
	// VerifyToken returns the identity a valid token names, a
	// domain.KindUnauthenticated error for any other token, or a
	// domain.KindUnavailable error while the provider cannot be reached.
	VerifyToken(ctx context.Context, token string) (domain.Identity, error)
}

// StandingBook finds the standing of a user and a team (their budgets and
// their rate and concurrency limits), for a caller who has no key to carry
// them.
type StandingBook interface {
	// StandingOf returns the budgets of the user (scope user) and of the
	// team (scope team), of every period and model, and the user's and the
	// team's limits; none is not an error.
	StandingOf(ctx context.Context, user, team string) (domain.Standing, error)
}

// Settlement is the actual outcome of a reserved call.
type Settlement struct {
	ReservationID string
	Caller        domain.Caller
	Model         string // the model that answered
	// Group is the model group of Model (the catalogue's group:), so that
	// budgets on that group are charged; budgets on other models or groups
	// that the reservation held give their hold back.
	Group string
	Usage domain.Usage
	Cost  domain.Micros
	At    time.Time
}

// SpendLedger holds budgets exactly, across replicas: a call's worst-case
// cost is reserved before the provider is called (or, for a caller without
// budgets, while it works) and settled afterwards.
type SpendLedger interface {
	// Reserve holds r.Amount against every budget in r.Budgets atomically, or
	// returns a domain.KindBudgetExceeded error naming the budget that has no
	// room and holds nothing.
	Reserve(ctx context.Context, r domain.Reservation) error
	// Settle replaces the reservation by the actual cost on the budgets
	// that apply to the model that answered (the others give their hold
	// back) and records usage. An unknown reservation is a
	// domain.KindNotFound error.
	Settle(ctx context.Context, s Settlement) error
	// SettleAll applies settlements as Settle would one by one, all in one
	// transaction: all of them or, with an error, none. A settlement of a
	// reservation settled or released already (earlier, or by an earlier
	// settlement of the same list) changes nothing, as Settle's does.
	SettleAll(ctx context.Context, ss []Settlement) error
	// Release drops a reservation whose call cost nothing. An unknown
	// reservation is a domain.KindNotFound error.
	Release(ctx context.Context, reservationID string) error
	// Orphans returns the reservations that an earlier run of h.Log took
	// (their Holder's Log is h.Log and their Run is not h.Run) and that are
	// neither settled nor released, with their ID, Amount, At, Holder and
	// For: calls whose process stopped before anything of them reached the
	// call log. A reservation the ledger gave back for its age is among
	// them until it is settled: its cost is still owed.
	Orphans(ctx context.Context, h domain.Holder) ([]domain.Reservation, error)
	// Report returns the caller's usage by day and model since from, and the
	// state of the caller's budgets at now.
	Report(ctx context.Context, c domain.Caller, from, now time.Time) (domain.UsageReport, error)
}

// ReservationSender is what a SpendLedger may do besides: say when a
// reservation has left this process for good. The gateway finds it by type
// assertion and, for a call that reserves while its provider works, calls
// the provider only once the reservation is sent, so that a process that
// stops after calling the provider leaves the reservation behind it.
type ReservationSender interface {
	// ReserveSending is Reserve, calling sent (at most once, before it
	// returns) when the reservation has left the process as a whole that
	// the ledger commits with no further word from it, even if the process
	// stops then. A reservation with budgets, which needs another round
	// trip, is never sent so; sent is then not called. An error after sent
	// leaves the reservation perhaps held (its answer lost): the caller
	// settles or releases it in case it is, and KindNotFound says it is not.
	ReserveSending(ctx context.Context, r domain.Reservation, sent func()) error
}

// CallLog is the durable audit trail. Record must not return before the
// record is safe (on disk or in the database): once it returns nil, the
// record survives a crash and is eventually written exactly once.
type CallLog interface {
	// Admit takes a slot for one call's record, or returns a
	// domain.KindUnavailable error when the log cannot take it (it is full,
	// or it cannot write), so that a call is refused before it is made.
	// Admitted calls whose records are not written yet count against the
	// log's capacity. After a nil error the caller must call release once
	// the record is written (Record returned) or once it is sure that no
	// record follows; calling it again does nothing.
	Admit() (release func(), err error)
	// Intend makes the intent of an admitted call durable while its
	// provider works. The call's Record, which must follow, supersedes it.
	Intend(ctx context.Context, i domain.CallIntent) error
	Record(ctx context.Context, r domain.CallRecord) error
	// RecordOwing is Record for a call whose settlement the ledger applies
	// after the answer: owed is made durable with the record, in the same
	// write, and the log keeps it, even once the record is delivered,
	// until Acknowledge names its reservation. So a process that stops
	// between the answer and the settlement leaves owed to Owed.
	RecordOwing(ctx context.Context, r domain.CallRecord, owed Settlement) error
	// Acknowledge tells the log that the ledger has applied (or can never
	// apply) the owed settlements of these reservations, so that it may
	// forget them. It does not wait for the disk: an acknowledgement a
	// crash loses only means that Owed returns the settlement again, and
	// settling twice changes nothing. Unknown ids are ignored.
	Acknowledge(reservationIDs []string)
	// Owed returns the settlements an earlier process recorded with
	// RecordOwing and never saw acknowledged: calls it answered (or was
	// answering) whose settlement the ledger may not have applied. Each
	// stays owed until acknowledged.
	Owed(ctx context.Context) ([]Settlement, error)
	// Unfinished returns the intents an earlier process left without their
	// record: calls it was making when it stopped. Each stays unfinished
	// until a Record with its request id is written.
	Unfinished(ctx context.Context) ([]domain.CallIntent, error)
}

// RateHold is what one admitted call holds against the per-window limits
// it was admitted under: the window it counts against and the tokens held
// there, in the counters of every limit with a tokens-per-window limit.
type RateHold struct {
	Window   time.Time // the start of the window the hold counts against
	Tokens   int       // tokens held against each of Counters
	Counters []string  // the counters (domain.RateLimit.Counter) that hold Tokens
	// Limits is the tightest state of the limits after the admission (or,
	// with a rate-limited error, at the refusal), for the answer's headers.
	Limits domain.RateLimits
}

// Slot is one count of calls in flight with a limit: a key's, a user's, a
// team's, a model's, a provider account's. Name is unique across all kinds
// ("key:ID", "team:NAME", …; domain.RateLimit.Slot); the limit is the caller's to give, so that its meaning
// (a key's own max_concurrent, a setting) stays where it is decided.
type Slot struct {
	Name  string
	Limit int
}

// Lease is the places one call occupies in its slots, until Vacate.
type Lease struct {
	ID    string   // unique per call
	Slots []string // the names of the slots it occupies
}

// SlotFullError is Occupy's refusal: the slot has Limit calls in flight.
type SlotFullError struct{ Slot Slot }

func (e *SlotFullError) Error() string {
	return fmt.Sprintf("%s already has %d calls in flight, its limit", e.Slot.Name, e.Slot.Limit)
}

// RateLimiter enforces requests-per-window and tokens-per-window limits
// (domain.RateLimit: a key's, a user's, a team's, a model's, a provider
// account's) in fixed windows (one minute unless configured otherwise),
// and the limits on calls in flight.
// Tokens are reserved like budgets: a call holds its worst case (prompt
// tokens plus output cap) at admission and settlement gives back what it
// did not use, so the tokens admitted in a window never exceed the limit.
//
// An adapter that keeps its counts elsewhere (a server shared by the
// replicas) returns a domain.KindUnavailable error when it cannot reach
// them and is configured to refuse calls then.
type RateLimiter interface {
	// Admit counts one request against every limit's requests per window
	// and holds tokens against every limit's tokens per window, for the
	// window that contains now, all or none. It returns a
	// domain.KindRateLimited error naming the first limit without room
	// (with RetryAfter, the rest of the window, and the hold's Limits
	// filled) and holds nothing when one has no room, and a
	// domain.KindInvalid error when tokens alone exceed a limit, which no
	// window can take. A limit of 0 is unlimited.
	Admit(ctx context.Context, limits []domain.RateLimit, tokens int, now time.Time) (RateHold, error)
	// Settle replaces the hold by the tokens the call used, at most the
	// tokens held, giving the rest back to the hold's window; used 0
	// gives the whole hold back. A hold is settled once.
	Settle(ctx context.Context, h RateHold, used int) error
	// Occupy takes one place in every slot for the call id, all or none: it
	// returns a *SlotFullError naming the first slot that has no room, and
	// then occupies nothing. A slot with a limit of 0 or less is not
	// counted.
	Occupy(ctx context.Context, id string, slots []Slot) (Lease, error)
	// Vacate gives the lease's places back. A lease is vacated once.
	Vacate(ctx context.Context, l Lease) error
}

// AlertOutbox holds the budget alerts a SpendLedger raised until they are
// delivered. A ledger raises an alert in the transaction that settles the
// spending crossing its threshold, so that no crash loses one and each
// threshold fires once per budget and period, however many replicas run.
type AlertOutbox interface {
	// ClaimAlerts returns up to n undelivered alerts whose next attempt
	// is due at now, and moves their next attempt to now+lease, so that
	// another replica does not deliver them meanwhile. An alert's
	// Attempts counts the claims before this one.
	ClaimAlerts(ctx context.Context, now time.Time, n int, lease time.Duration) ([]domain.BudgetAlert, error)
	// AlertDelivered marks the alert delivered: it is never claimed again.
	AlertDelivered(ctx context.Context, id int64) error
	// AlertFailed sets the alert's next attempt, after a failed delivery.
	AlertFailed(ctx context.Context, id int64, next time.Time, why string) error
}

// ResponseStore keeps the Responses API's stored responses, each owned by
// one user. A response another user owns, or one expired at now, is
// treated everywhere as if it did not exist.
type ResponseStore interface {
	// SaveResponse stores r under r.ID, which is new.
	SaveResponse(ctx context.Context, r domain.StoredResponse) error
	// Response returns the response id owned by owner, unexpired at now, or
	// a domain.KindNotFound error.
	Response(ctx context.Context, owner, id string, now time.Time) (domain.StoredResponse, error)
	// DeleteResponse deletes the response id owned by owner, unexpired at
	// now, or returns a domain.KindNotFound error and deletes nothing.
	DeleteResponse(ctx context.Context, owner, id string, now time.Time) error
	// DeleteExpiredResponses deletes at most limit responses expired at
	// now, and returns how many it deleted, so that one sweep's work is bounded.
	DeleteExpiredResponses(ctx context.Context, now time.Time, limit int) (int, error)
}
