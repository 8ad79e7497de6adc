package domain

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Micros is an amount of US dollars in millionths of a dollar. All money in
// tidygate is integral so that budgets add up exactly.
type Micros int64

// MicrosPerUSD is the number of Micros in one dollar.
const MicrosPerUSD Micros = 1_000_000

// USD returns the amount as a float number of dollars, for display and metrics only.
func (m Micros) USD() float64 { return float64(m) / float64(MicrosPerUSD) }

// String formats the amount as dollars with six decimals, e.g. "$0.001250".
func (m Micros) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s$%d.%06d", sign, m/MicrosPerUSD, m%MicrosPerUSD)
}

// ParseUSD parses a non-negative decimal dollar amount such as "12.5" with at
// most six decimals, without going through floating point.
func ParseUSD(s string) (Micros, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("%q is not a dollar amount", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("%q has more than six decimals", s)
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseUint(whole, 10, 63)
	if err != nil || w > math.MaxInt64/uint64(MicrosPerUSD)-1 {
		return 0, fmt.Errorf("%q is not a dollar amount", s)
	}
	var f uint64
	if frac != "" {
		f, err = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 63)
		if err != nil {
			return 0, fmt.Errorf("%q is not a dollar amount", s)
		}
	}
	return Micros(w)*MicrosPerUSD + Micros(f), nil
}

// Price is what a model costs, in Micros per million tokens.
type Price struct {
	InputPerMillion  Micros
	OutputPerMillion Micros
}

// Cost returns the exact cost of the usage, rounded up to the next micro-dollar
// so that many small calls never add up to less than they cost.
func (p Price) Cost(u Usage) Micros {
	return ceilPerMillion(int64(u.PromptTokens)*int64(p.InputPerMillion)) +
		ceilPerMillion(int64(u.CompletionTokens)*int64(p.OutputPerMillion))
}

// InputCost returns the cost of the prompt tokens alone, rounded up.
func (p Price) InputCost(u Usage) Micros {
	return ceilPerMillion(int64(u.PromptTokens) * int64(p.InputPerMillion))
}

// OutputCost returns the cost of the completion tokens alone, rounded up.
func (p Price) OutputCost(u Usage) Micros {
	return ceilPerMillion(int64(u.CompletionTokens) * int64(p.OutputPerMillion))
}

func ceilPerMillion(v int64) Micros {
	if v <= 0 {
		return 0
	}
	return Micros((v + 999_999) / 1_000_000)
}
