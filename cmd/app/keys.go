package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
)

// keys runs the key administration subcommands. They use the same plain
// constructors as serve, without fx: the shared pool and the key store.
func keys(ctx context.Context, cfg infra.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"keys needs a subcommand: create, list or revoke\n" + usageText}
	}
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
	store := postgres.NewKeyStore(pool)

	switch args[0] {
	case "create":
		nk, err := parseNewKey(args[1:], stderr)
		if err != nil {
			return err
		}
		if err := checkModels(cfg, nk.AllowedModels); err != nil {
			return err
		}
		key, secret, err := store.Create(ctx, nk)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created key %s for user %q, team %q; the secret below is shown only once\n",
			key.ID, key.Caller.User, key.Caller.Team)
		_, err = fmt.Fprintln(stdout, secret)
		return err
	case "list":
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		return writeKeys(stdout, list)
	case "revoke":
		if len(args) != 2 {
			return usageError{"usage: tidygate keys revoke ID"}
		}
		if err := store.Revoke(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "revoked key %s\n", args[1])
		return nil
	}
	return usageError{fmt.Sprintf("unknown keys subcommand %q\n%s", args[0], usageText)}
}

// usdFlag is a flag holding an exact dollar amount.
type usdFlag struct{ v *domain.Micros }

func (f usdFlag) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.String()
}

func (f usdFlag) Set(s string) error {
	m, err := domain.ParseUSD(s)
	if err != nil {
		return err
	}
	*f.v = m
	return nil
}

func parseNewKey(args []string, stderr io.Writer) (postgres.NewKey, error) {
	var nk postgres.NewKey
	var models string
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&nk.User, "user", "", "the user the key belongs to (required)")
	fs.StringVar(&nk.Team, "team", "", "the user's team (required)")
	fs.StringVar(&models, "models", "", "comma-separated models or aliases the key may use (default: all)")
	fs.Var(usdFlag{&nk.DailyBudget}, "daily-budget-usd", "the user's daily budget in USD")
	fs.Var(usdFlag{&nk.MonthlyBudget}, "monthly-budget-usd", "the user's monthly budget in USD")
	fs.Var(usdFlag{&nk.TeamDailyBudget}, "team-daily-budget-usd", "the team's daily budget in USD")
	fs.Var(usdFlag{&nk.TeamMonthlyBudget}, "team-monthly-budget-usd", "the team's monthly budget in USD")
	fs.IntVar(&nk.RPM, "rpm", 0, "requests per minute (0: unlimited)")
	fs.IntVar(&nk.TPM, "tpm", 0, "tokens per minute (0: unlimited)")
	if err := fs.Parse(args); err != nil {
		return nk, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nk, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var problems []string
	if strings.TrimSpace(nk.User) == "" {
		problems = append(problems, "--user is required")
	}
	if strings.TrimSpace(nk.Team) == "" {
		problems = append(problems, "--team is required")
	}
	if nk.RPM < 0 || nk.TPM < 0 {
		problems = append(problems, "--rpm and --tpm must not be negative")
	}
	if len(problems) > 0 {
		return nk, usageError{strings.Join(problems, "; ")}
	}
	for _, m := range strings.Split(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			nk.AllowedModels = append(nk.AllowedModels, m)
		}
	}
	return nk, nil
}

func writeKeys(w io.Writer, list []domain.APIKey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tTEAM\tMODELS\tRPM\tTPM\tCREATED\tREVOKED")
	for _, k := range list {
		models := strings.Join(k.Caller.AllowedModels, ",")
		if models == "" {
			models = "*"
		}
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", k.ID, k.Caller.User, k.Caller.Team, models,
			k.Caller.RPM, k.Caller.TPM, k.CreatedAt.UTC().Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

// checkModels refuses a key for models the catalogue does not have, so that a
// typo is caught when the key is made rather than on every call.
func checkModels(cfg infra.Config, models []string) error {
	if len(models) == 0 {
		return nil
	}
	cat, err := infra.LoadCatalogue(cfg.CatalogueFile, providerNames())
	if err != nil {
		return err
	}
	var unknown []string
	for _, m := range models {
		if _, err := cat.Resolve(m); err != nil {
			unknown = append(unknown, m)
		}
	}
	if len(unknown) > 0 {
		return usageError{fmt.Sprintf("--models names models that are not in the catalogue: %s", strings.Join(unknown, ", "))}
	}
	return nil
}
