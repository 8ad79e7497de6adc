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
	"slices"
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
	env := func() (infra.Config, error) {
		c, err := loadConfiguration(environ, stderr, false)
		return c.cfg, err
	}
	whole := func() (configuration, error) { return loadConfiguration(environ, stderr, true) }
	name, args, err := subcommand("", args, stdout)
	if err != nil {
		return err
	}
	switch name {
	case "serve":
		return serve(ctx, whole, args, stdout, stderr)
	case "keys":
		return keys(ctx, env, args, stdout, stderr)
	case "admin-keys":
		return adminKeys(ctx, env, args, stdout, stderr)
	case "config":
		if _, err := parseArgs(newFlags("config"), args, stdout); err != nil {
			return err
		}
		c, err := whole()
		if err != nil {
			return err
		}
		return printConfig(c.cfg, c.ps, stdout)
	case "healthcheck":
		return healthcheck(ctx, env, args, stdout)
	}
	panic("cmd/app: command " + name + " is in commands but not run")
}

// environment reads the configuration from the environment. A command
// calls it once its command line is good, so that asking for the usage,
// or a mistake in the command line, never depends on the environment.
type environment func() (infra.Config, error)

// configuration is the whole configuration, read and checked before
// anything starts: the settings, every provider type's settings and the
// catalogue, which serve hands to the fx graph as they are.
type configuration struct {
	cfg infra.Config
	ps  providerSettings
	cat infra.Catalogue
}

// loadConfiguration reads the configuration and the provider settings from
// environ and, with catalogue (serve and config), loads the catalogue
// CATALOGUE_FILE names and checks the credentials it names
// (loadCatalogue). Every problem in any of them is written on stderr, one
// line each, all at once, and the error is then a usageError (exit status
// 2), nothing having been opened or started.
func loadConfiguration(environ []string, stderr io.Writer, catalogue bool) (configuration, error) {
	env := envMap(environ)
	var c configuration
	var problems []string
	add := func(err error) error {
		var ce *infra.ConfigError
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
			return nil
		}
		return err
	}
	cfg, err := infra.LoadConfig(env)
	if err = add(err); err != nil {
		return configuration{}, err
	}
	ps, providerProblems := loadProviderSettings(env)
	problems = append(problems, providerProblems...)
	// A CATALOGUE_FILE that cannot be read is reported once, as a setting.
	if catalogue && !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, "CATALOGUE_FILE=") }) {
		cat, err := loadCatalogue(env["CATALOGUE_FILE"], ps)
		if err = add(err); err != nil {
			return configuration{}, err
		}
		c.cat = cat
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "config:", p)
		}
		return configuration{}, usageError{fmt.Sprintf("%d configuration problem(s); nothing was started", len(problems))}
	}
	c.cfg, c.ps = cfg, ps
	return c, nil
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
