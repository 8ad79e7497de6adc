package domain_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestParseUSD(t *testing.T) {
	cases := []struct {
		in   string
		want domain.Micros
		ok   bool
	}{
		{"0", 0, true}, {"1", 1_000_000, true}, {"0.15", 150_000, true}, {"$12.5", 12_500_000, true},
		{".000001", 1, true}, {"3.", 3_000_000, true}, {" 2.25 ", 2_250_000, true},
		{"", 0, false}, {".", 0, false}, {"-1", 0, false}, {"1.0000001", 0, false}, {"abc", 0, false},
		{"1e3", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, tc := range cases {
		got, err := domain.ParseUSD(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseUSD(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMicrosString(t *testing.T) {
	for m, want := range map[domain.Micros]string{0: "$0.000000", 1: "$0.000001", 1_250_000: "$1.250000", -5: "-$0.000005"} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(m), got, want)
		}
	}
}

func TestPriceCostRoundsUp(t *testing.T) {
	p := domain.Price{InputPerMillion: 150_000, OutputPerMillion: 600_000} // $0.15 / $0.60 per million
	// 7 prompt tokens cost 1.05 micro-dollars: rounded up to 2; 3 completion tokens cost exactly 1.8 → 2.
	if got := p.Cost(domain.Usage{PromptTokens: 7, CompletionTokens: 3}); got != 4 {
		t.Fatalf("cost = %d, want 4", got)
	}
	if got := p.Cost(domain.Usage{PromptTokens: 1_000_000}); got != 150_000 {
		t.Fatalf("a million input tokens = %d, want exactly 150000", got)
	}
	if got := p.Cost(domain.Usage{}); got != 0 {
		t.Fatalf("no tokens cost %d", got)
	}
}

func TestChatValidate(t *testing.T) {
	two := 2.5
	nan := func() *float64 { z := 0.0; v := z / z; return &v }()
	ok := domain.ChatRequest{Model: "m", Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}}
	cases := []struct {
		name  string
		edit  func(*domain.ChatRequest)
		param string
	}{
		{"valid", func(*domain.ChatRequest) {}, ""},
		{"no model", func(r *domain.ChatRequest) { r.Model = "" }, "model"},
		{"no messages", func(r *domain.ChatRequest) { r.Messages = nil }, "messages"},
		{"bad role", func(r *domain.ChatRequest) { r.Messages[0].Role = "wizard" }, "messages[0].role"},
		{"bad utf8", func(r *domain.ChatRequest) { r.Messages[0].Content = "\xff" }, "messages[0].content"},
		{"negative max_tokens", func(r *domain.ChatRequest) { r.MaxTokens = -1 }, "max_tokens"},
		{"absurd max_tokens", func(r *domain.ChatRequest) { r.MaxTokens = domain.MaxTokensLimit + 1 }, "max_tokens"},
		{"temperature", func(r *domain.ChatRequest) { r.Temperature = &two }, "temperature"},
		{"NaN temperature", func(r *domain.ChatRequest) { r.Temperature = nan }, "temperature"},
		{"top_p", func(r *domain.ChatRequest) { r.TopP = &two }, "top_p"},
		{"penalties at the bounds, any seed", func(r *domain.ChatRequest) {
			lo, hi, seed := -2.0, 2.0, int64(math.MinInt64)
			r.PresencePenalty, r.FrequencyPenalty, r.Seed = &lo, &hi, &seed
		}, ""},
		{"seed 0", func(r *domain.ChatRequest) { r.Seed = new(int64) }, ""},
		{"presence_penalty", func(r *domain.ChatRequest) { r.PresencePenalty = &two }, "presence_penalty"},
		{"NaN presence_penalty", func(r *domain.ChatRequest) { r.PresencePenalty = nan }, "presence_penalty"},
		{"frequency_penalty", func(r *domain.ChatRequest) { v := -two; r.FrequencyPenalty = &v }, "frequency_penalty"},
		{"NaN frequency_penalty", func(r *domain.ChatRequest) { r.FrequencyPenalty = nan }, "frequency_penalty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			r.Messages = append([]domain.Message(nil), ok.Messages...)
			tc.edit(&r)
			err := r.Validate()
			if tc.param == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != tc.param {
				t.Fatalf("err = %v, want invalid %q", err, tc.param)
			}
		})
	}
}

func TestEmbedValidate(t *testing.T) {
	for _, r := range []domain.EmbedRequest{
		{Model: "", Inputs: []string{"x"}},
		{Model: "e"},
		{Model: "e", Inputs: []string{""}},
		{Model: "e", Inputs: []string{"x"}, Dimensions: -1},
	} {
		if err := r.Validate(); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: err = %v, want invalid", r, err)
		}
	}
	if err := (domain.EmbedRequest{Model: "e", Inputs: []string{"x"}}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestEmbedTokenInputs checks the token-array form of an embeddings
// request: each input a non-empty array of token ids from 0 to
// MaxTokenID, never beside text, counted as inputs by the limits, and
// reserved at exactly its number of token ids.
func TestEmbedTokenInputs(t *testing.T) {
	tokens := domain.EmbedRequest{Model: "e", Tokens: [][]int{{1, 2, 3}, {domain.MaxTokenID}}}
	if err := tokens.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		req       domain.EmbedRequest
		inMessage string
	}{
		"an empty array":     {domain.EmbedRequest{Model: "e", Tokens: [][]int{{1}, {}}}, "input[1] is empty"},
		"a negative id":      {domain.EmbedRequest{Model: "e", Tokens: [][]int{{1, -1}}}, "token 1 of input 0 is -1"},
		"an id beyond 2^31":  {domain.EmbedRequest{Model: "e", Tokens: [][]int{{1 << 31}}}, "from 0 to 2147483647"},
		"text and tokens":    {domain.EmbedRequest{Model: "e", Inputs: []string{"a"}, Tokens: [][]int{{1}}}, "mixes strings and token arrays"},
		"too many arrays":    {domain.EmbedRequest{Model: "e", Tokens: make([][]int, domain.MaxEmbedInputs+1)}, "at most 2048"},
		"no input of either": {domain.EmbedRequest{Model: "e", Tokens: [][]int{}}, "must not be empty"},
	} {
		t.Run(name, func(t *testing.T) {
			var de *domain.Error
			if err := tc.req.Validate(); !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "input" ||
				!strings.Contains(de.Message, tc.inMessage) {
				t.Errorf("err = %v; want invalid input, saying %q", err, tc.inMessage)
			}
		})
	}

	if got := domain.WorstCaseEmbed(tokens); got != (domain.Usage{PromptTokens: 4}) {
		t.Errorf("WorstCaseEmbed(4 token ids) = %+v; want exactly 4 prompt tokens", got)
	}
	limits := domain.EmbedLimits{MaxInputs: 1, MaxInputBytes: 3, MaxResponseValues: 4}
	for _, tc := range []struct {
		req   domain.EmbedRequest
		param string
	}{
		{tokens, "input"}, // two inputs, one allowed
		{domain.EmbedRequest{Tokens: [][]int{{1, 2, 3, 4}}}, "input"},            // four token ids, three allowed
		{domain.EmbedRequest{Tokens: [][]int{{1}}, Dimensions: 5}, "dimensions"}, // five numbers, four allowed
	} {
		var de *domain.Error
		if err := limits.Check(tc.req); !errors.As(err, &de) || de.Param != tc.param {
			t.Errorf("Check(%+v) = %v; want invalid %s", tc.req, err, tc.param)
		}
	}
	if err := limits.Check(domain.EmbedRequest{Tokens: [][]int{{1, 2, 3}}, Dimensions: 4}); err != nil {
		t.Errorf("Check(a request within the limits) = %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	cause := errors.New("socket closed")
	err := fmt.Errorf("reserve: %w", domain.Wrap(domain.KindUnavailable, cause, "database unavailable"))
	if !errors.Is(err, domain.KindUnavailable) || !errors.Is(err, cause) || errors.Is(err, domain.KindInvalid) {
		t.Fatalf("errors.Is does not see the kind and the cause through %v", err)
	}
	if domain.KindOf(err) != domain.KindUnavailable || domain.KindOf(cause) != domain.KindInternal {
		t.Fatal("KindOf is wrong")
	}
	if domain.KindBudgetExceeded.String() != "budget_exceeded" {
		t.Fatal(domain.KindBudgetExceeded.String())
	}
}

// TestEveryKindIsNamed fails when a kind is added without its name, so that
// Kinds (which the edges' error-table tests range over) stays complete.
func TestEveryKindIsNamed(t *testing.T) {
	kinds := domain.Kinds()
	if len(kinds) < 9 || kinds[0] != domain.KindInternal {
		t.Fatalf("Kinds() = %v", kinds)
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		name := k.String()
		if name == "" || strings.HasPrefix(name, "kind(") || seen[name] {
			t.Errorf("kind %d has name %q: give it a unique name in kindNames", uint8(k), name)
		}
		seen[name] = true
	}
}

func TestCatalogue(t *testing.T) {
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	m, err := cat.Resolve("mock")
	if err != nil || m.Name != "mock-chat" {
		t.Fatalf("alias: %+v %v", m, err)
	}
	if _, err := cat.Resolve("gpt-4"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("unknown model: %v (the original system silently mapped gpt-4 to claude)", err)
	}
	_, err = domain.NewCatalogue([]domain.Model{
		{Name: "a", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 1, Fallbacks: []string{"e", "zz", "a"}},
		{Name: "a", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 1},
		{Name: "e", Type: domain.ModelEmbedding, Provider: "p", Aliases: []string{"a"}},
		{Name: "c", Type: domain.ModelChat},
	})
	if err == nil {
		t.Fatal("an invalid catalogue was accepted")
	}
	want := []string{`"a": name: the model is defined twice`, `alias "a"`, `fallback "zz"`, `lists itself`, `fallback "e" is of type embedding`, `"c": provider: is required`, `"c": max_output_tokens`}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("catalogue error has %d lines, want one per problem (%d):\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !contains(err.Error(), w) {
			t.Errorf("catalogue error lacks %q:\n%v", w, err)
		}
	}
	var ce *domain.CatalogueError
	if !errors.As(err, &ce) || len(ce.Problems) != len(want) || ce.Problems[2].Model != "c" || ce.Problems[2].Field != "max_output_tokens" {
		t.Errorf("problems = %+v, want them structured by model and field", ce)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestPeriods(t *testing.T) {
	at := time.Date(2026, 11, 28, 23, 59, 0, 0, time.FixedZone("x", -3600))
	if got := domain.PeriodDay.Start(at); !got.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day start = %v (periods are UTC)", got)
	}
	if got := domain.PeriodMonth.End(at); !got.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("month end = %v", got)
	}
}

func TestWorstCaseBoundsAnyTokenizer(t *testing.T) {
	r := domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Content: "héllo wörld"}}}
	w := domain.WorstCaseChat(r, 7)
	if w.PromptTokens < len("héllo wörld") || w.CompletionTokens != 7 {
		t.Fatalf("worst case %+v does not bound a byte-level tokenizer", w)
	}
}

func TestKeys(t *testing.T) {
	a, err := domain.NewKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := domain.NewKeySecret()
	if a == b || !domain.LooksLikeKey(a) || domain.LooksLikeKey("sk-"+a) {
		t.Fatalf("keys %q %q", a, b)
	}
	if !domain.HashesEqual(domain.HashKey(a), domain.HashKey(a)) || domain.HashesEqual(domain.HashKey(a), domain.HashKey(b)) {
		t.Fatal("hash comparison is wrong")
	}
}

func TestReservationValidate(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	day := domain.Budget{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 10}
	ok := domain.Reservation{ID: "r1", Amount: 5, At: at, Budgets: []domain.Budget{day}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []domain.Reservation{
		{Amount: 5, At: at},
		{ID: "r", Amount: -1, At: at},
		{ID: "r", Amount: 1},
		{ID: "r", Amount: 1, At: at, Budgets: []domain.Budget{day, day}},
		{ID: "r", Amount: 1, At: at, Budgets: []domain.Budget{{Scope: "org", ScopeID: "x", Period: domain.PeriodDay}}},
		{ID: "r", Amount: 1, At: at, Budgets: []domain.Budget{{Scope: domain.ScopeTeam, ScopeID: "x", Period: "fortnight"}}},
		{ID: "r", Amount: 1, At: at, Budgets: []domain.Budget{{Scope: domain.ScopeTeam, ScopeID: "x", Period: domain.PeriodDay, Limit: -1}}},
	}
	for _, r := range bad {
		if err := r.Validate(); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: err = %v, want invalid", r, err)
		}
	}
	err := domain.BudgetExceeded(day, 8, 5)
	if err.Kind != domain.KindBudgetExceeded || err.Code != "budget_exceeded" ||
		err.Message != `the budget of user "alice" per day is $0.000010 and has $0.000002 left; this call may cost up to $0.000005` {
		t.Fatalf("BudgetExceeded = %+v", err)
	}
}

func TestParsePeriod(t *testing.T) {
	good := map[string]domain.Period{
		"day": "day", "week": "week", "month": "month", "rolling:24h": "rolling:24h", "rolling:1440m": "rolling:24h",
		"rolling:30d": "rolling:30d", "rolling:720h": "rolling:30d", "rolling:1d": "rolling:24h", "rolling:90m": "rolling:90m",
	}
	for in, want := range good {
		if got, err := domain.ParsePeriod(in); err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "year", "rolling:", "rolling:0s", "rolling:30s", "rolling:400d", "rolling:-1h", "rolling:1.5d", "Day"} {
		if got, err := domain.ParsePeriod(in); err == nil {
			t.Errorf("ParsePeriod(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseBudgetSpecs(t *testing.T) {
	b, err := domain.ParseBudgetSpec("team:rolling:30d=12.5")
	if err != nil || b != (domain.Budget{Scope: domain.ScopeTeam, Period: "rolling:30d", Limit: 12_500_000}) {
		t.Errorf("ParseBudgetSpec = %+v, %v", b, err)
	}
	b, err = domain.ParseModelBudgetSpec("group:premium@key:week=3")
	if err != nil || b != (domain.Budget{Scope: domain.ScopeKey, Period: domain.PeriodWeek, Limit: 3_000_000, Model: "group:premium"}) {
		t.Errorf("ParseModelBudgetSpec = %+v, %v", b, err)
	}
	for _, bad := range []string{"key:month", "org:day=5", "key:fortnight=5", "key:day=0", "key:day=-1", "user=5", "key:day=abc"} {
		if _, err := domain.ParseBudgetSpec(bad); err == nil {
			t.Errorf("ParseBudgetSpec(%q) succeeded, want an error", bad)
		}
	}
	for _, bad := range []string{"@key:day=5", "gpt", "group:@key:day=5", "gpt@key:day=0"} {
		if _, err := domain.ParseModelBudgetSpec(bad); err == nil {
			t.Errorf("ParseModelBudgetSpec(%q) succeeded, want an error", bad)
		}
	}
}

func TestCrossedThresholds(t *testing.T) {
	th := []int{50, 80, 100}
	cases := []struct {
		before, after domain.Micros
		want          []int
	}{
		{0, 49, nil}, {0, 50, []int{50}}, {49, 100, []int{50, 80, 100}}, {50, 79, nil}, {79, 80, []int{80}}, {100, 200, nil}, {60, 50, nil},
	}
	for _, c := range cases {
		if got := domain.CrossedThresholds(th, 100, c.before, c.after); !slices.Equal(got, c.want) {
			t.Errorf("CrossedThresholds(%d → %d) = %v, want %v", c.before, c.after, got, c.want)
		}
	}
	if got := domain.CrossedThresholds(th, 3, 1, 2); !slices.Equal(got, []int{50}) { // 1.5 is crossed exactly, without rounding
		t.Errorf("CrossedThresholds on a limit of 3 = %v, want [50]", got)
	}
}

func TestBudgetApplies(t *testing.T) {
	m := domain.Model{Name: "gpt", Group: "fast"}
	for b, want := range map[domain.Budget]bool{
		{}: true, {Model: "gpt"}: true, {Model: "group:fast"}: true, {Model: "mini"}: false,
		{Model: "group:slow"}: false, {Model: "fast"}: false,
	} {
		if got := b.Applies(m); got != want {
			t.Errorf("%+v.Applies(gpt of fast) = %v, want %v", b, got, want)
		}
	}
}

// claude is priced as Anthropic prices its models: $3 input, $15 output,
// cache reads at a tenth of the input price, cache writes at 1.25 times it.
var claude = domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000,
	CacheReadPerMillion: 300_000, CacheWritePerMillion: 3_750_000}

func TestCostIsTheExactSumOverTokenClasses(t *testing.T) {
	cases := []struct {
		name string
		p    domain.Price
		u    domain.Usage
		in   domain.Micros
	}{
		// 100 uncached × 3 + 1000 read × 0.3 + 200 written × 3.75 = 300 + 300 + 750 micro-dollars.
		{"every class", claude, domain.Usage{PromptTokens: 1300, CompletionTokens: 10, CacheReadTokens: 1000, CacheWriteTokens: 200}, 1350},
		{"no cache", claude, domain.Usage{PromptTokens: 1300, CompletionTokens: 10}, 3900},
		// Summed before rounding: 1 × 3 + 1 × 0.3 + 1 × 3.75 = 7.05 → 8, not 3 + 1 + 4.
		{"rounded once", claude, domain.Usage{PromptTokens: 3, CacheReadTokens: 1, CacheWriteTokens: 1}, 8},
		// No cache prices: every input token at the input price.
		{"cache prices absent", domain.Price{InputPerMillion: 3_000_000}, domain.Usage{PromptTokens: 1300, CacheReadTokens: 1000, CacheWriteTokens: 200}, 3900},
		// A count whose classes exceed the prompt counts no token twice:
		// reads first (1000 of 1000), then writes (none left).
		{"inconsistent count", claude, domain.Usage{PromptTokens: 1000, CacheReadTokens: 1000, CacheWriteTokens: 500}, 300},
		{"negative classes", claude, domain.Usage{PromptTokens: 10, CacheReadTokens: -5, CacheWriteTokens: -5}, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.InputCost(tc.u); got != tc.in {
				t.Errorf("input cost = %d, want %d", got, tc.in)
			}
			if got, want := tc.p.Cost(tc.u), tc.in+tc.p.OutputCost(tc.u); got != want {
				t.Errorf("cost = %d, want input %d + output %d", got, tc.in, tc.p.OutputCost(tc.u))
			}
			c := tc.u.Classes()
			if c.Uncached+c.CacheRead+c.CacheWrite != max(tc.u.PromptTokens, 0) || c.Uncached < 0 || c.CacheRead < 0 || c.CacheWrite < 0 {
				t.Errorf("classes %+v do not split %d prompt tokens", c, tc.u.PromptTokens)
			}
		})
	}
}

func TestReasoningIsPricedAsOutput(t *testing.T) {
	with := claude.Cost(domain.Usage{PromptTokens: 10, CompletionTokens: 100, ReasoningTokens: 60})
	without := claude.Cost(domain.Usage{PromptTokens: 10, CompletionTokens: 100})
	if with != without {
		t.Fatalf("reasoning changed the cost: %d with, %d without (reasoning tokens are part of the output)", with, without)
	}
}

// The worst case prices every input token at the dearest input class: a
// prompt that turns out to be all cache writes costs more than plain input,
// and never more than MaxCost.
func TestMaxCostBoundsEverySplitOfTheInput(t *testing.T) {
	bound := domain.Usage{PromptTokens: 1000, CompletionTokens: 50}
	worst := claude.MaxCost(bound)
	if plain := claude.Cost(bound); worst <= plain {
		t.Fatalf("MaxCost %d is not above the cost of plain input %d, though a cache write costs more", worst, plain)
	}
	for read := 0; read <= 1000; read += 250 {
		for write := 0; write <= 1000-read; write += 250 {
			u := domain.Usage{PromptTokens: 1000, CompletionTokens: 50, CacheReadTokens: read, CacheWriteTokens: write}
			if got := claude.Cost(u); got > worst {
				t.Errorf("%d read, %d written cost %d, more than the worst case %d", read, write, got, worst)
			}
		}
	}
	if got := claude.Cost(domain.Usage{PromptTokens: 1000, CompletionTokens: 50, CacheWriteTokens: 1000}); got != worst {
		t.Errorf("all cache writes cost %d, want the worst case %d exactly", got, worst)
	}
	cheapWrite := domain.Price{InputPerMillion: 3_000_000, CacheWritePerMillion: 1_000_000}
	if got, want := cheapWrite.MaxCost(bound), cheapWrite.Cost(bound); got != want {
		t.Errorf("with cache writes cheaper than input the worst case is %d, want plain input's %d", got, want)
	}
}

func TestWithinKeepsTheClassesInsideThePrompt(t *testing.T) {
	claimed := domain.Usage{PromptTokens: 900, CompletionTokens: 10, CacheReadTokens: 800, CacheWriteTokens: 100}
	got := claimed.Within(domain.Usage{PromptTokens: 500, CompletionTokens: 10})
	if got.PromptTokens != 500 || got.CacheReadTokens+got.CacheWriteTokens > 500 {
		t.Fatalf("Within = %+v: the classes exceed the capped prompt", got)
	}
	if claimed.Within(domain.Usage{PromptTokens: 1000, CompletionTokens: 10}) != claimed {
		t.Fatal("a consistent claim within the bound was changed")
	}
}

// TestAuditTraceKeyKeepsInstallationsApart: entries with the same ID and
// keys of their own (two installations sharing one MLflow database) get
// different traces; one entry gets the same trace each time; an entry
// without a key keeps the trace its ID gave it before keys existed.
func TestAuditTraceKeyKeepsInstallationsApart(t *testing.T) {
	a := domain.AuditEntry{ID: 1, TraceKey: "6f1c8a52-0d7e-4b8e-9a0c-3c2d1e0f9b7a"}
	b := domain.AuditEntry{ID: 1, TraceKey: "c3b9e1d4-5a6f-4e2b-8c7d-1a0b9f8e7d6c"}
	if domain.AuditTraceID(a) == domain.AuditTraceID(b) {
		t.Errorf("two entries with ID 1 and keys of their own share trace %s", domain.AuditTraceID(a))
	}
	if domain.AuditTraceID(a) != domain.AuditTraceID(domain.AuditEntry{ID: 7, TraceKey: a.TraceKey}) {
		t.Error("the trace depends on more than the entry's key")
	}
	if got, want := domain.AuditTraceKey(domain.AuditEntry{ID: 42}), "audit-42"; got != want {
		t.Errorf("an entry without a key: %q, want %q", got, want)
	}
	if !strings.HasPrefix(domain.AuditTraceID(a), "tr-") || len(domain.AuditTraceID(a)) != 35 {
		t.Errorf("trace ID %q is not tr- and 32 hex digits", domain.AuditTraceID(a))
	}
}
