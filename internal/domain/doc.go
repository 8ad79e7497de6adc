// Package domain holds tidygate's vocabulary: requests, responses, usage,
// money, callers, the model catalogue, call records and the error kinds, with
// the pure rules that go with them (validation, cost, worst-case reservation).
//
// It imports only the standard library. Persistence, HTTP and provider SDKs
// live in adapters; the gateway package orchestrates a call through ports.
package domain
