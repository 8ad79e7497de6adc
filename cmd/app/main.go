// Command tidygate is the corporate LLM gateway: an OpenAI-compatible HTTP
// service that applies corporate policy to every call and records it in
// MLflow's tables.
//
// Usage:
//
//	tidygate serve [--dev-key]
//	tidygate keys create --user U --team T [--models a,b] [--budget SCOPE:PERIOD=USD ...] [--model-budget MODEL@SCOPE:PERIOD=USD ...]
//	                     [--daily-budget-usd X] [--monthly-budget-usd Y]
//	                     [--team-daily-budget-usd X] [--team-monthly-budget-usd Y] [--replace-budget] [--rpm N] [--tpm N]
//	                     [--max-concurrent N] [--reason R]
//	tidygate keys list
//	tidygate keys revoke ID [--reason R]
//	tidygate admin-keys create --name NAME --scopes read,write [--reason R]
//	tidygate config      # print the effective configuration, secrets redacted
//	tidygate healthcheck [--ready]  # probe the running service (the image's HEALTHCHECK)
//
// Configuration comes from the environment; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // BUDGET_TIME_ZONE works in images without a zone database

	"github.com/tidygate/tidygate/internal/infra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(report(os.Stderr, err))
	}
}

// report writes err for an operator, one line per problem, each starting
// with "tidygate:", and returns the exit status: 2 for a mistake in the
// command line or the configuration, 1 otherwise.
func report(w io.Writer, err error) int {
	var problems usageProblems
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(w, "tidygate:", p)
		}
		return 2
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintln(w, "tidygate:", err)
		return 2
	}
	for line := range strings.SplitSeq(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintln(w, "tidygate:", line)
	}
	return 1
}

// usageError is a mistake in the command line or the configuration.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usageProblems are several mistakes in the command line, which report
// writes one line each (exit status 2).
type usageProblems []string

func (p usageProblems) Error() string { return strings.Join(p, "\n") }

const usageText = `usage:
  tidygate serve [--dev-key]
  tidygate keys create --user U --team T [--models a,b] [--budget SCOPE:PERIOD=USD ...]
                       [--model-budget MODEL@SCOPE:PERIOD=USD ...] [--daily-budget-usd X] [--monthly-budget-usd Y]
                       [--team-daily-budget-usd X] [--team-monthly-budget-usd Y] [--replace-budget]
                       [--rpm N] [--tpm N] [--max-concurrent N]
                       [--user-rpm N] [--user-tpm N] [--user-max-concurrent N]
                       [--team-rpm N] [--team-tpm N] [--team-max-concurrent N]
                       [--expires-in DURATION] [--reason R]
  tidygate keys list
  tidygate keys rotate ID [--grace DURATION] [--reason R]
  tidygate keys revoke ID [--reason R]
  tidygate admin-keys create --name NAME --scopes read,write [--reason R]
  tidygate config
  tidygate healthcheck [--ready] [--timeout DURATION]`

// run is the whole program: it parses the command line and the environment
// (given as os.Environ-style KEY=VALUE strings) and runs one subcommand until
// ctx is cancelled.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{usageText}
	}
	env := envMap(environ)
	cfg, err := infra.LoadConfig(env)
	var problems []string
	var ce *infra.ConfigError
	switch {
	case errors.As(err, &ce):
		problems = ce.Problems
	case err != nil:
		return err
	}
	ps, providerProblems := loadProviderSettings(env)
	if problems = append(problems, providerProblems...); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "config:", p)
		}
		return usageError{fmt.Sprintf("%d configuration problem(s); nothing was started", len(problems))}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, ps, args[1:], stderr)
	case "keys":
		return keys(ctx, cfg, args[1:], stdout, stderr)
	case "admin-keys":
		return adminKeys(ctx, cfg, args[1:], stdout, stderr)
	case "config":
		return printConfig(cfg, ps, stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usageText)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usageText)}
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
