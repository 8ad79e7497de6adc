package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
)

// keys runs the key administration subcommands. They use the same plain
// constructors as serve, without fx: the shared pool, the key store, and the
// administration service, through which every change goes with its audit
// entry.
func keys(ctx context.Context, env environment, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("keys", args, stdout)
	if err != nil {
		return err
	}
	var nk domain.NewKey
	var reason, id string
	var replace bool
	var grace time.Duration
	switch sub {
	case "create":
		nk, reason, replace, err = parseNewKey(args, stdout)
	case "list":
		_, err = parseArgs(newFlags("keys list"), args, stdout)
	case "revoke":
		id, reason, err = parseKeyID("revoke", args, stdout, nil)
	case "rotate":
		graceFlag := func(fs *flag.FlagSet) {
			fs.DurationVar(&grace, "grace", 0, "how long the replaced secret keeps working, e.g. 24h (default 0: it stops at once)")
		}
		id, reason, err = parseKeyID("rotate", args, stdout, graceFlag)
	}
	if err != nil {
		return err
	}
	cfg, err := env()
	if err != nil {
		return err
	}
	if sub == "create" {
		if err := checkModels(cfg, nk); err != nil {
			return err
		}
	}
	if sub != "list" {
		if reason, err = cliReason(cfg, reason, stderr); err != nil {
			return err
		}
	}
	return withAdmin(ctx, cfg, stderr, func(ctx context.Context, svc *admin.Service) error {
		actor := cliActor()
		switch sub {
		case "create":
			existing, err := svc.Keys(ctx, actor)
			if err != nil {
				return err
			}
			replaced, err := budgetChanges(ctx, svc, actor, nk, replace)
			if err != nil {
				return err
			}
			nk.ReplaceBudgets = replace
			key, secret, err := svc.CreateKey(ctx, actor, reason, nk)
			if err != nil {
				return err
			}
			for _, r := range replaced {
				fmt.Fprintln(stderr, r)
			}
			for _, r := range limitChanges(existing, key) {
				fmt.Fprintln(stderr, r)
			}
			fmt.Fprintf(stderr, "created key %s for user %q, team %q; the secret below is shown only once\n",
				key.ID, key.Caller.User, key.Caller.Team)
			_, err = fmt.Fprintln(stdout, secret)
			return err
		case "rotate":
			key, secret, err := svc.RotateKey(ctx, actor, reason, id, grace, "")
			if err != nil {
				return err
			}
			if grace > 0 {
				fmt.Fprintf(stderr, "rotated key %s; the old secret works until %s; the new secret below is shown only once\n",
					id, key.PreviousValidUntil.UTC().Format(time.RFC3339))
			} else {
				fmt.Fprintf(stderr, "rotated key %s; the old secret no longer works; the new secret below is shown only once\n", id)
			}
			_, err = fmt.Fprintln(stdout, secret)
			return err
		case "revoke":
			if _, err := svc.RevokeKey(ctx, actor, reason, id, ""); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "revoked key %s\n", id)
			return nil
		}
		list, err := svc.Keys(ctx, actor)
		if err != nil {
			return err
		}
		return writeKeys(stdout, list)
	})
}

// withAdmin builds the shared pool, applies the migrations and runs f with
// the administration service on the key store.
func withAdmin(ctx context.Context, cfg infra.Config, stderr io.Writer, f func(context.Context, *admin.Service) error) error {
	logger := infra.NewLogger(cfg, stderr)
	d := infra.NewDelegate(cfg, logger)
	pool, err := infra.NewSharedPool(ctx, d)
	if err != nil {
		return err
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := postgres.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("prepare the database: %w", err)
	}
	return f(ctx, admin.NewService(postgres.NewKeyStore(pool), admin.Options{MinReasonLen: cfg.AuditReasonMinLen, MaxReasonLen: cfg.AuditReasonMaxLen}))
}

// noCLIReason is the audit reason of a change made on the command line
// without --reason. The commands accept that unless AUDIT_REASON_REQUIRED_CLI
// is true, so that scripts written before the audit log keep working, but
// they say so on stderr and the audit log shows it plainly; --reason is the
// way to give a real one.
const noCLIReason = "no reason given (command line without --reason)"

// cliReason returns the reason given with --reason. Without one, it refuses
// when cfg requires a reason on the command line, and otherwise warns and
// returns noCLIReason. A --reason that is given must be long enough: the
// service refuses a short one.
func cliReason(cfg infra.Config, reason string, stderr io.Writer) (string, error) {
	if reason != "" {
		return reason, nil
	}
	if cfg.AuditReasonRequiredCLI {
		return "", usageError{"--reason is required (AUDIT_REASON_REQUIRED_CLI=true): say why, for the audit log; nothing was changed"}
	}
	fmt.Fprintln(stderr, "warning: no --reason given; the audit log records:", noCLIReason)
	return noCLIReason, nil
}

// cliActor is who runs the command: the operating-system user, with the write
// scope (whoever can run tidygate inside the deployment can reach the database).
func cliActor() domain.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return domain.Actor{Kind: domain.ActorCLI, ID: name, Scopes: []domain.AdminScope{domain.AdminWrite}}
}

// parseKeyID parses "ID [--reason R]" and the flags more defines (when not
// nil), the flags before or after the ID; its usage goes to stdout.
func parseKeyID(cmd string, args []string, stdout io.Writer, more func(*flag.FlagSet)) (id, reason string, err error) {
	fs := newFlags("keys " + cmd)
	reasonFlag(fs, &reason)
	if more != nil {
		more(fs)
	}
	ids, err := parseArgs(fs, args, stdout, "a key ID")
	if err != nil {
		return "", "", err
	}
	return ids[0], reason, nil
}

// reasonFlag defines --reason on fs.
func reasonFlag(fs *flag.FlagSet, reason *string) {
	fs.StringVar(reason, "reason", "", "why: recorded in the audit log (without it, the log says no reason was given, or the command refuses when AUDIT_REASON_REQUIRED_CLI=true)")
}

// usdFlag is a flag holding an exact, positive dollar amount. Unset, it
// shows no default: leaving the flag out means no budget, not $0.
type usdFlag struct{ v *domain.Micros }

func (f usdFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return f.v.String()
}

func (f usdFlag) Set(s string) error {
	m, err := domain.ParseBudgetUSD(s)
	if err != nil {
		return err
	}
	*f.v = m
	return nil
}

// specsFlag collects the values of a repeatable flag, checked after
// parsing so that every bad one is reported.
type specsFlag struct{ v *[]string }

func (f specsFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, " ")
}

func (f specsFlag) Set(s string) error {
	*f.v = append(*f.v, s)
	return nil
}

// parseBudgetSpecs parses the --budget and --model-budget values into
// budgets, returning one problem per bad value and per budget named twice.
func parseBudgetSpecs(budgets, modelBudgets []string) ([]domain.Budget, []string) {
	var out []domain.Budget
	var problems []string
	add := func(flag, spec string, b domain.Budget, err error) {
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s %s", flag, err))
			return
		}
		for _, o := range out {
			if o.SameCounter(b) {
				problems = append(problems, fmt.Sprintf("--%s %q: the same budget is given twice", flag, spec))
				return
			}
		}
		out = append(out, b)
	}
	for _, spec := range budgets {
		b, err := domain.ParseBudgetSpec(spec)
		add("budget", spec, b, err)
	}
	for _, spec := range modelBudgets {
		b, err := domain.ParseModelBudgetSpec(spec)
		add("model-budget", spec, b, err)
	}
	return out, problems
}

// parseNewKey parses the command line of keys create; its usage goes to
// stdout.
func parseNewKey(args []string, stdout io.Writer) (nk domain.NewKey, reason string, replace bool, err error) {
	var models string
	var budgets, modelBudgets []string
	var expiresIn time.Duration
	fs := newFlags("keys create")
	fs.StringVar(&nk.User, "user", "", "the user the key belongs to (required)")
	fs.StringVar(&nk.Team, "team", "", "the user's team (required)")
	fs.StringVar(&models, "models", "", "comma-separated models or aliases the key may use (default: all)")
	fs.Var(usdFlag{&nk.DailyBudget}, "daily-budget-usd", "the user's daily budget in `USD`, positive (default: no budget)")
	fs.Var(usdFlag{&nk.MonthlyBudget}, "monthly-budget-usd", "the user's monthly budget in `USD`, positive (default: no budget)")
	fs.Var(usdFlag{&nk.TeamDailyBudget}, "team-daily-budget-usd", "the team's daily budget in `USD`, positive (default: no budget)")
	fs.Var(usdFlag{&nk.TeamMonthlyBudget}, "team-monthly-budget-usd", "the team's monthly budget in `USD`, positive (default: no budget)")
	fs.Var(specsFlag{&budgets}, "budget", "a budget as `SCOPE:PERIOD=USD`, repeatable: SCOPE key, user or team; PERIOD day, week, month (in BUDGET_TIME_ZONE) or rolling:DURATION (e.g. key:month=5, team:rolling:30d=500)")
	fs.Var(specsFlag{&modelBudgets}, "model-budget", "a budget on one model or group as `MODEL@SCOPE:PERIOD=USD`, repeatable (e.g. gpt-4o@user:day=10, group:premium@team:month=300)")
	fs.BoolVar(&replace, "replace-budget", false, "replace a different budget the user or team already has (default: refuse)")
	fs.IntVar(&nk.RPM, "rpm", 0, "requests per minute (0: unlimited)")
	fs.IntVar(&nk.TPM, "tpm", 0, "tokens per minute (0: unlimited)")
	fs.IntVar(&nk.MaxConcurrent, "max-concurrent", 0, "concurrent calls this key may make (0: the MAX_CONCURRENT_PER_KEY share)")
	fs.IntVar(&nk.UserLimits.RPM, "user-rpm", 0, "requests per minute of the user, all their keys together (0: leave as it is)")
	fs.IntVar(&nk.UserLimits.TPM, "user-tpm", 0, "tokens per minute of the user, all their keys together (0: leave as it is)")
	fs.IntVar(&nk.UserLimits.MaxConcurrent, "user-max-concurrent", 0, "concurrent calls of the user, all their keys together (0: leave as it is)")
	fs.IntVar(&nk.TeamLimits.RPM, "team-rpm", 0, "requests per minute of the team, all its keys together (0: leave as it is)")
	fs.IntVar(&nk.TeamLimits.TPM, "team-tpm", 0, "tokens per minute of the team, all its keys together (0: leave as it is)")
	fs.IntVar(&nk.TeamLimits.MaxConcurrent, "team-max-concurrent", 0, "concurrent calls of the team, all its keys together (0: leave as it is, else the MAX_CONCURRENT_PER_TEAM share)")
	fs.DurationVar(&expiresIn, "expires-in", 0, "the key stops working after this long, e.g. 720h (default: never)")
	reasonFlag(fs, &reason)
	if _, err := parseArgs(fs, args, stdout); err != nil {
		return nk, "", false, err
	}
	var problems []string
	if strings.TrimSpace(nk.User) == "" {
		problems = append(problems, "--user is required")
	}
	if strings.TrimSpace(nk.Team) == "" {
		problems = append(problems, "--team is required")
	}
	if nk.RPM < 0 || nk.TPM < 0 || nk.MaxConcurrent < 0 {
		problems = append(problems, "--rpm, --tpm and --max-concurrent must not be negative")
	}
	for _, l := range []struct {
		who string
		l   domain.Limits
	}{{"user", nk.UserLimits}, {"team", nk.TeamLimits}} {
		if l.l.RPM < 0 || l.l.TPM < 0 || l.l.MaxConcurrent < 0 {
			problems = append(problems, fmt.Sprintf("--%[1]s-rpm, --%[1]s-tpm and --%[1]s-max-concurrent must not be negative", l.who))
		}
	}
	if expiresIn < 0 {
		problems = append(problems, "--expires-in must be positive (leave it out for a key that never expires)")
	} else if expiresIn > 0 {
		nk.ExpiresAt = time.Now().Add(expiresIn).UTC().Truncate(time.Second)
	}
	more, bad := parseBudgetSpecs(budgets, modelBudgets)
	problems = append(problems, bad...)
	for _, b := range more {
		if b.Legacy() && b.Model == "" && legacyFlagSet(nk, b) {
			problems = append(problems, fmt.Sprintf("--budget %s:%s is also given by its own flag (--%s); give it once", b.Scope, b.Period, legacyFlagName(b)))
		}
	}
	if len(problems) > 0 {
		return nk, "", false, usageProblems(problems)
	}
	nk.More = more
	for _, m := range strings.Split(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			nk.AllowedModels = append(nk.AllowedModels, m)
		}
	}
	return nk, reason, replace, nil
}

// legacyFlags are the budget flags that came before --budget, and the
// budgets they set.
var legacyFlags = []struct {
	name   string
	scope  domain.ScopeKind
	period domain.Period
	limit  func(domain.NewKey) domain.Micros
}{
	{"daily-budget-usd", domain.ScopeUser, domain.PeriodDay, func(nk domain.NewKey) domain.Micros { return nk.DailyBudget }},
	{"monthly-budget-usd", domain.ScopeUser, domain.PeriodMonth, func(nk domain.NewKey) domain.Micros { return nk.MonthlyBudget }},
	{"team-daily-budget-usd", domain.ScopeTeam, domain.PeriodDay, func(nk domain.NewKey) domain.Micros { return nk.TeamDailyBudget }},
	{"team-monthly-budget-usd", domain.ScopeTeam, domain.PeriodMonth, func(nk domain.NewKey) domain.Micros { return nk.TeamMonthlyBudget }},
}

// legacyFlagSet reports whether the older flag of b's scope and period was given.
func legacyFlagSet(nk domain.NewKey, b domain.Budget) bool {
	for _, f := range legacyFlags {
		if f.scope == b.Scope && f.period == b.Period {
			return f.limit(nk) > 0
		}
	}
	return false
}

// legacyFlagName names the older flag of b's scope and period.
func legacyFlagName(b domain.Budget) string {
	for _, f := range legacyFlags {
		if f.scope == b.Scope && f.period == b.Period {
			return f.name
		}
	}
	return ""
}

// budgetChanges returns the budgets of nk's user and team that nk would
// give another limit, by the service's rule (admin.Service.BudgetReplacements,
// which CreateKey enforces): refused, with every one of them and the flag
// that allows it, unless replace is set; then each replacement is returned
// as a line for the operator.
func budgetChanges(ctx context.Context, svc *admin.Service, actor domain.Actor, nk domain.NewKey, replace bool) ([]string, error) {
	replaced, err := svc.BudgetReplacements(ctx, actor, nk)
	if err != nil || len(replaced) == 0 {
		return nil, err
	}
	changes := make([]string, len(replaced))
	for i, r := range replaced {
		changes[i] = r.String()
	}
	if !replace {
		return nil, usageError{strings.Join(changes, "\n") + "\nnothing was created: pass --replace-budget to replace it, or leave the flag out to keep it"}
	}
	for i, c := range changes {
		changes[i] = "replaced: " + c
	}
	return changes, nil
}

// writeKeys lists keys with their limits; a limit that is not set reads
// "unlimited", never 0.
func writeKeys(w io.Writer, list []domain.APIKey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tTEAM\tMODELS\tRPM\tTPM\tCONCURRENT\tUSER LIMITS\tTEAM LIMITS\tBUDGETS\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, k := range list {
		models := strings.Join(k.Caller.AllowedModels, ",")
		if models == "" {
			models = "*"
		}
		var expires *time.Time
		if !k.Caller.KeyExpiresAt.IsZero() {
			expires = &k.Caller.KeyExpiresAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Caller.User, k.Caller.Team, models,
			perMinute(k.Caller.RPM), perMinute(k.Caller.TPM), concurrency(k.Caller.MaxConcurrent),
			limitList(k.Caller.UserLimits), limitList(k.Caller.TeamLimits), budgetList(k.Caller.Budgets),
			k.CreatedAt.UTC().Format(time.RFC3339), when(expires, "never"), when(k.LastUsedAt, "never"), when(k.RevokedAt, "-"))
	}
	return tw.Flush()
}

// limitList renders a user's or team's limits as "rpm=60,tpm=10000,concurrent=5",
// the ones set only; "-" when none is.
func limitList(l domain.Limits) string {
	var parts []string
	for _, f := range []struct {
		name string
		v    int
	}{{"rpm", l.RPM}, {"tpm", l.TPM}, {"concurrent", l.MaxConcurrent}} {
		if f.v > 0 {
			parts = append(parts, f.name+"="+strconv.Itoa(f.v))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// limitChanges returns a line for the operator for each limit of the new
// key's user and team that its creation changed, as the existing keys
// showed them before.
func limitChanges(existing []domain.APIKey, key domain.APIKey) []string {
	var out []string
	for _, k := range existing {
		for _, c := range []struct {
			who         string
			same        bool
			before, now domain.Limits
		}{
			{fmt.Sprintf("user %q", key.Caller.User), k.Caller.User == key.Caller.User, k.Caller.UserLimits, key.Caller.UserLimits},
			{fmt.Sprintf("team %q", key.Caller.Team), k.Caller.Team == key.Caller.Team, k.Caller.TeamLimits, key.Caller.TeamLimits},
		} {
			if c.same && c.before != c.now && c.before != (domain.Limits{}) {
				out = append(out, fmt.Sprintf("replaced: the limits of %s were %s; they are now %s (every key of theirs)", c.who, limitList(c.before), limitList(c.now)))
			}
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}

// when renders an optional instant, or none when it is not set.
func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// perMinute renders an rpm or tpm limit; 0 means none.
func perMinute(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// concurrency renders a key's own bound on its concurrent calls; 0 means
// the gateway's per-key share.
func concurrency(n int) string {
	if n == 0 {
		return "share"
	}
	return strconv.Itoa(n)
}

// budgetList renders a key's budgets as "user/day $5.000000,team/month …",
// a budget on one model or group as "gpt-4o@user/day $1.000000".
func budgetList(budgets []domain.Budget) string {
	if len(budgets) == 0 {
		return "unlimited"
	}
	parts := make([]string, len(budgets))
	for i, b := range budgets {
		parts[i] = fmt.Sprintf("%s/%s %s", b.Scope, b.Period, b.Limit)
		if b.Model != "" {
			parts[i] = b.Model + "@" + parts[i]
		}
	}
	return strings.Join(parts, ",")
}

// checkModels refuses a key for models the catalogue does not have, so that a
// typo is caught when the key is made rather than on every call, naming the
// flag that named them. The catalogue is read only when a flag names any.
func checkModels(cfg infra.Config, nk domain.NewKey) error {
	budgets := domain.BudgetModels(nk.More)
	if len(nk.AllowedModels) == 0 && len(budgets) == 0 {
		return nil
	}
	cat, err := newCatalogue(cfg)
	if err != nil {
		return err
	}
	models := cat.Models.Models()
	for _, named := range []struct {
		flag  string
		names []string
	}{{"--models", nk.AllowedModels}, {"--model-budget", budgets}} {
		if unknown := domain.UnknownModels(models, named.names); len(unknown) > 0 {
			return usageError{fmt.Sprintf("%s names models that are not in the catalogue: %s", named.flag, strings.Join(unknown, ", "))}
		}
	}
	return nil
}
