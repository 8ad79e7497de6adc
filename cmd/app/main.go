// Command tidygate is the corporate LLM gateway: an OpenAI-compatible HTTP
// service that applies corporate policy to every call and records it in
// MLflow's tables.
//
// Usage:
//
//	tidygate serve [--dev-key]
//	tidygate keys create|list|rotate|revoke ...
//	tidygate admin-keys create ...
//	tidygate config
//	tidygate healthcheck [--ready]
//
// `tidygate --help` lists the commands with their flags (the table in
// cli.go), and `tidygate COMMAND --help` prints one command's usage.
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

// usageText is the usage of every command, which tidygate --help prints.
var usageText = groupUsage("")

// run is the whole program: it parses the command line and the environment
// (given as os.Environ-style KEY=VALUE strings) and runs one subcommand until
// ctx is cancelled. A command asked for its usage prints it and returns nil.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if err := runCommand(ctx, args, environ, stdout, stderr); !errors.Is(err, errUsageShown) {
		return err
	}
	return nil
}

func runCommand(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	env := func() (infra.Config, providerSettings, error) { return loadEnvironment(environ, stderr) }
	name, args, err := subcommand("", args, stdout)
	if err != nil {
		return err
	}
	switch name {
	case "serve":
		return serve(ctx, env, args, stdout, stderr)
	case "keys":
		return keys(ctx, env, args, stdout, stderr)
	case "admin-keys":
		return adminKeys(ctx, env, args, stdout, stderr)
	case "config":
		if _, err := parseArgs(newFlags("config"), args, stdout); err != nil {
			return err
		}
		cfg, ps, err := env()
		if err != nil {
			return err
		}
		return printConfig(cfg, ps, stdout)
	case "healthcheck":
		return healthcheck(ctx, env, args, stdout)
	}
	panic("cmd/app: command " + name + " is in commands but not run")
}

// environment reads the configuration from the environment. A command
// calls it once its command line is good, so that asking for the usage,
// or a mistake in the command line, never depends on the environment.
type environment func() (infra.Config, providerSettings, error)

// loadEnvironment reads the configuration and the provider settings from
// environ, reporting every problem in them on stderr, one line each.
func loadEnvironment(environ []string, stderr io.Writer) (infra.Config, providerSettings, error) {
	env := envMap(environ)
	cfg, err := infra.LoadConfig(env)
	var problems []string
	var ce *infra.ConfigError
	switch {
	case errors.As(err, &ce):
		problems = ce.Problems
	case err != nil:
		return infra.Config{}, providerSettings{}, err
	}
	ps, providerProblems := loadProviderSettings(env)
	if problems = append(problems, providerProblems...); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "config:", p)
		}
		return infra.Config{}, providerSettings{}, usageError{fmt.Sprintf("%d configuration problem(s); nothing was started", len(problems))}
	}
	return cfg, ps, nil
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
