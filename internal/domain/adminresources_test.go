package domain_test

import (
	"errors"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// TestLimitsChange checks that a change sets the limits it names, removes
// those it names with zero, leaves the others, and refuses a limit out of
// range.
func TestLimitsChange(t *testing.T) {
	rpm, none := 60, 0
	c := domain.LimitsChange{RPM: &rpm, MaxConcurrent: &none}
	if got := c.Apply(domain.Limits{RPM: 1, TPM: 900, MaxConcurrent: 4}); got != (domain.Limits{RPM: 60, TPM: 900}) {
		t.Errorf("Apply = %+v, want rpm 60, tpm 900 kept, max_concurrent removed", got)
	}
	if c.IsZero() || !(domain.LimitsChange{}).IsZero() {
		t.Error("IsZero does not tell a change from none")
	}
	for _, bad := range []int{-1, domain.MaxLimit + 1} {
		err := domain.LimitsChange{TPM: &bad}.Validate()
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "limits.tpm" {
			t.Errorf("tpm %d: %v, want an invalid limits.tpm", bad, err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a good change: %v", err)
	}
}

// TestPrincipalVersionCoversLimits checks that a change of limits changes a
// user's version, and that one without limits keeps the version of its
// budgets alone.
func TestPrincipalVersionCoversLimits(t *testing.T) {
	p := domain.Principal{Scope: domain.ScopeUser, ID: "alice"}
	plain := domain.PrincipalVersion(p) // the first 20 hex digits of SHA-256("user\x00alice"), as earlier releases made it
	if plain != "61e53a32f777fee6b9ea" {
		t.Errorf("the version of a user without budgets or limits is %s; it must not change between releases", plain)
	}
	p.Limits.RPM = 60
	limited := domain.PrincipalVersion(p)
	p.Limits.RPM = 61
	if limited == plain || domain.PrincipalVersion(p) == limited {
		t.Error("a change of limits keeps the version")
	}
}
