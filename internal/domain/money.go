package domain

import (
	"errors"
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

// ParseBudgetUSD reads a budget's limit in dollars, as ParseUSD does, and
// refuses 0: a budget of 0 would allow nothing, and every way of setting a
// budget (the command line, the admin API, the console) reads an absent
// budget as none, never as 0.
func ParseBudgetUSD(s string) (Micros, error) {
	m, err := ParseUSD(s)
	if err == nil && m == 0 {
		return 0, errors.New("a budget of 0 would allow nothing; leave it out for no budget, or remove the one there is")
	}
	return m, err
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

// Price is what a model costs, in Micros per million tokens, by token
// class. Input tokens are priced by class: those read from the provider's
// prompt cache at CacheReadPerMillion, those written to it at
// CacheWritePerMillion, the rest at InputPerMillion; a zero cache price
// means the input price. Output tokens, reasoning included, are priced at
// OutputPerMillion: OpenAI, Anthropic and Bedrock all bill reasoning
// (thinking) tokens as output tokens, so reasoning has no price of its own.
type Price struct {
	InputPerMillion      Micros
	OutputPerMillion     Micros
	CacheReadPerMillion  Micros // 0: InputPerMillion
	CacheWritePerMillion Micros // 0: InputPerMillion
}

// CacheRead returns the price of an input token read from the prompt cache.
func (p Price) CacheRead() Micros {
	if p.CacheReadPerMillion == 0 {
		return p.InputPerMillion
	}
	return p.CacheReadPerMillion
}

// CacheWrite returns the price of an input token written to the prompt cache.
func (p Price) CacheWrite() Micros {
	if p.CacheWritePerMillion == 0 {
		return p.InputPerMillion
	}
	return p.CacheWritePerMillion
}

// MaxInput returns the dearest price an input token can have: a cache
// write may cost more than plain input (Anthropic bills it at 1.25 or 2
// times the input price), so a worst case prices every input token at it.
func (p Price) MaxInput() Micros {
	return max(p.InputPerMillion, p.CacheRead(), p.CacheWrite())
}

// Cost returns the exact cost of the usage, the sum over its token classes,
// each part rounded up to the next micro-dollar so that many small calls
// never add up to less than they cost.
func (p Price) Cost(u Usage) Micros {
	return p.InputCost(u) + p.OutputCost(u)
}

// MaxCost returns the most usage u can cost whatever its split into token
// classes: every input token at the dearest input price. A reservation
// holds it, so that a call whose input turns out to be a cache write is
// never charged more than was reserved.
func (p Price) MaxCost(u Usage) Micros {
	return ceilPerMillion(int64(u.PromptTokens)*int64(p.MaxInput())) + p.OutputCost(u)
}

// InputCost returns the cost of the input tokens alone: the tokens read
// from and written to the prompt cache at their prices and the rest at the
// input price, summed exactly, then rounded up. Each input token is counted
// once: cache reads and writes are parts of PromptTokens, and counts beyond
// it (a provider's inconsistent report) are capped by Classes.
func (p Price) InputCost(u Usage) Micros {
	c := u.Classes()
	return ceilPerMillion(int64(c.Uncached)*int64(p.InputPerMillion) +
		int64(c.CacheRead)*int64(p.CacheRead()) + int64(c.CacheWrite)*int64(p.CacheWrite()))
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
