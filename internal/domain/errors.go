package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies a failure so that each edge (HTTP, logs, call records) can
// react to it without knowing which adapter produced it.
type Kind uint8

// The error kinds. KindInternal is the zero value: anything unclassified is a
// bug or an infrastructure fault, never the client's fault.
const (
	KindInternal        Kind = iota // unexpected failure inside tidygate
	KindInvalid                     // the request is malformed or out of range
	KindUnauthenticated             // no key, or an unknown or revoked key
	KindForbidden                   // the caller may not do this (model not allowed)
	KindNotFound                    // the named thing does not exist
	KindBudgetExceeded              // the call would exceed a spending budget
	KindRateLimited                 // too many requests or tokens per minute
	KindUnavailable                 // tidygate cannot serve now (database, journal, concurrency bound)
	KindUpstream                    // the provider failed after retries and fallbacks

	numKinds // keep last: kindNames has this many entries
)

// kindNames has one name per kind; a kind added above without a name here
// leaves an empty entry, which the domain's tests refuse.
var kindNames = [numKinds]string{
	KindInternal:        "internal",
	KindInvalid:         "invalid",
	KindUnauthenticated: "unauthenticated",
	KindForbidden:       "forbidden",
	KindNotFound:        "not_found",
	KindBudgetExceeded:  "budget_exceeded",
	KindRateLimited:     "rate_limited",
	KindUnavailable:     "unavailable",
	KindUpstream:        "upstream",
}

// String returns the kind's stable snake_case name, used in logs and call records.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds returns every error kind, KindInternal first. The edges' tests use
// it to prove that each kind has an answer in every error table.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// Error makes a Kind usable as a sentinel: errors.Is(err, domain.KindNotFound)
// is true for any *Error of that kind anywhere in err's chain.
func (k Kind) Error() string { return k.String() }

// Error is a classified failure with a message safe to show to the client.
type Error struct {
	Kind       Kind
	Message    string        // client-safe text; never contains secrets
	Param      string        // the request parameter at fault, if any
	Code       string        // a machine-readable code such as "budget_exceeded"
	RetryAfter time.Duration // for rate-limited and unavailable errors; zero when unknown
	Err        error         // the underlying cause, for logs; may be nil
}

// Error returns the client-safe message, followed by the cause if there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap exposes both the kind (as a sentinel) and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Errorf returns an *Error of the given kind with a formatted client-safe message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err as kind with a client-safe message, keeping err as the cause.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// InvalidParam returns a KindInvalid error that names the offending parameter.
func InvalidParam(param, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Param: param, Code: "invalid_value", Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
