package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// KeyPrefix starts every tidygate API key, so that leaked keys are easy to spot.
const KeyPrefix = "tg-"

// NewKeySecret returns a new random API key: the prefix and 32 random bytes in
// unpadded base64url.
func NewKeySecret() (string, error) { return newSecret(KeyPrefix) }

// NewAdminKeySecret returns a new random admin key: AdminKeyPrefix and 32
// random bytes in unpadded base64url.
func NewAdminKeySecret() (string, error) { return newSecret(AdminKeyPrefix) }

func newSecret(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashKey returns the hex SHA-256 of a key secret: the only form of a key that
// is ever stored. Keys carry 256 bits of entropy, so a fast hash is enough.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// HashesEqual compares two key hashes in constant time.
func HashesEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// LooksLikeKey reports whether s has the shape of a tidygate key, so that
// garbage is rejected before any lookup.
func LooksLikeKey(s string) bool {
	return strings.HasPrefix(s, KeyPrefix) && len(s) > len(KeyPrefix)+16 && len(s) < 256
}

// APIKey describes a stored key; the secret itself is never kept.
// Its expiry is Caller.KeyExpiresAt.
type APIKey struct {
	ID        string
	Caller    Caller
	CreatedAt time.Time
	RevokedAt *time.Time
	// RotatedAt is when the secret was last replaced, and
	// PreviousValidUntil the end of that rotation's grace period, until
	// which the replaced secret still works; nil when never rotated.
	RotatedAt, PreviousValidUntil *time.Time
	// LastUsedAt is when the key last authenticated a call, as of the last
	// batch of last-used times written; nil when never (or not yet written).
	LastUsedAt *time.Time
}

// UsageRow is one line of a caller's usage report: one day and one model.
type UsageRow struct {
	Day              time.Time
	Model            string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	Cost             Micros
}

// BudgetStatus is how much of one budget is spent, held and left.
type BudgetStatus struct {
	Budget   Budget
	Spent    Micros
	Reserved Micros
	// Start and End bound the period the amounts are for: the calendar
	// period in the budget time zone, or the rolling window ending now.
	Start, End time.Time
}

// Remaining returns what is left of the budget, never below zero.
func (s BudgetStatus) Remaining() Micros {
	left := s.Budget.Limit - s.Spent - s.Reserved
	if left < 0 {
		return 0
	}
	return left
}

// UsageReport is the caller's own spend and the state of their budgets.
type UsageReport struct {
	User    string
	Team    string
	Rows    []UsageRow
	Budgets []BudgetStatus
}
