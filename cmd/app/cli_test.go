package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// unreachable is an environment in which any command that got as far as
// doing its work would fail or say so on stderr: no database and no
// service answer there.
var unreachable = []string{
	"DATABASE_URL=postgres://tidygate@127.0.0.1:1/none", "DB_CONNECT_TIMEOUT=1s",
	"HTTP_ADDR=127.0.0.1:1", "LOG_LEVEL=info",
}

// broken is an environment with mistakes in it, which a command reads only
// once its command line is good.
var broken = []string{"REPLICAS=0", "DB_PORT=x"}

var environments = map[string][]string{"unreachable": unreachable, "broken": broken}

// cli runs the command line as main does: run, then report's exit status
// and lines on stderr when it fails. ctx is cancelled, so that a command
// that started work it should not have (serve) ends at once.
func cli(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, environ, &out, &errOut); err != nil {
		code = report(&errOut, err)
	}
	return code, out.String(), errOut.String()
}

// TestHelpShowsUsage: -h, -help and --help after any command, in any place
// a flag may stand, print its usage on stdout, naming its flags, and end
// with exit status 0 without doing anything (no database, no service is
// reached, nothing is said on stderr), even when the environment is broken.
func TestHelpShowsUsage(t *testing.T) {
	for _, tc := range []struct {
		path  string
		args  []string
		flags []string
	}{
		{"serve", []string{"serve"}, []string{"--dev-key"}},
		{"keys create", []string{"keys", "create"}, []string{"--user", "--team", "--models", "--budget", "--model-budget",
			"--daily-budget-usd", "--monthly-budget-usd", "--team-daily-budget-usd", "--team-monthly-budget-usd",
			"--replace-budget", "--rpm", "--tpm", "--max-concurrent", "--user-rpm", "--user-tpm", "--user-max-concurrent",
			"--team-rpm", "--team-tpm", "--team-max-concurrent", "--expires-in", "--reason"}},
		{"keys create", []string{"keys", "create", "--user", "u", "--rpm", "5"}, []string{"--user", "--rpm"}},
		{"keys list", []string{"keys", "list"}, nil},
		{"keys rotate", []string{"keys", "rotate"}, []string{"--grace", "--reason"}},
		{"keys rotate", []string{"keys", "rotate", "key_x", "--grace", "1h"}, []string{"--grace", "--reason"}},
		{"keys revoke", []string{"keys", "revoke"}, []string{"--reason"}},
		{"keys revoke", []string{"keys", "revoke", "key_x"}, []string{"--reason"}},
		{"admin-keys create", []string{"admin-keys", "create"}, []string{"--name", "--scopes", "--reason"}},
		{"config", []string{"config"}, nil},
		{"healthcheck", []string{"healthcheck"}, []string{"--ready", "--timeout"}},
	} {
		for _, help := range []string{"-h", "-help", "--help"} {
			for name, environ := range environments {
				args := append(append([]string{}, tc.args...), help)
				code, stdout, stderr := cli(t, environ, args...)
				if code != 0 || stderr != "" {
					t.Errorf("%q (%s environment): exit %d, stderr %q; want 0 and nothing on stderr", args, name, code, stderr)
				}
				var missing []string
				for _, f := range tc.flags {
					if !strings.Contains(stdout, "\n  "+f) {
						missing = append(missing, f)
					}
				}
				if !strings.HasPrefix(stdout, "usage: tidygate "+tc.path) || len(missing) > 0 {
					t.Errorf("%q (%s environment): want the usage of %s, with every flag, on stdout; missing %v in:\n%s", args, name, tc.path, missing, stdout)
				}
			}
		}
	}
}

// TestCommandLineMistakes: every mistake in a command line is one line on
// stderr that names what is wrong and where the usage is, exit status 2,
// with nothing on stdout and nothing done, whatever the environment.
func TestCommandLineMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says []string // what the line must name
	}{
		// a bad value
		{[]string{"keys", "create", "--user", "u", "--team", "t", "--rpm", "abc"}, []string{"--rpm", `"abc"`, "whole number"}},
		{[]string{"keys", "create", "--user", "u", "--team", "t", "--daily-budget-usd", "0"}, []string{"--daily-budget-usd", "would allow nothing; leave it out"}},
		{[]string{"keys", "create", "--user", "u", "--team", "t", "--monthly-budget-usd", "lots"}, []string{"--monthly-budget-usd", `"lots"`}},
		{[]string{"keys", "create", "--user", "u", "--team", "t", "--expires-in", "soon"}, []string{"--expires-in", `"soon"`, "duration"}},
		{[]string{"keys", "create", "--user", "u", "--team", "t", "--tpm"}, []string{"--tpm", "needs a value"}},
		{[]string{"keys", "rotate", "key_x", "--grace", "a while"}, []string{"--grace", "duration"}},
		{[]string{"serve", "--dev-key=maybe"}, []string{"--dev-key", `"maybe"`}},
		{[]string{"healthcheck", "--timeout", "x"}, []string{"--timeout", `"x"`}},
		// an unknown flag
		{[]string{"serve", "--frob"}, []string{"--frob", "tidygate serve --help"}},
		{[]string{"keys", "create", "--frob"}, []string{"--frob", "tidygate keys create --help"}},
		{[]string{"keys", "list", "--frob"}, []string{"--frob", "tidygate keys list --help"}},
		{[]string{"keys", "revoke", "key_x", "--grace", "1h"}, []string{"--grace", "tidygate keys revoke --help"}},
		{[]string{"admin-keys", "create", "-frob"}, []string{"--frob", "tidygate admin-keys create --help"}},
		{[]string{"config", "--frob"}, []string{"--frob", "tidygate config --help"}},
		{[]string{"healthcheck", "--frob"}, []string{"--frob", "tidygate healthcheck --help"}},
		{[]string{"--frob"}, []string{"--frob", "tidygate --help"}},
		{[]string{"keys", "--frob"}, []string{"--frob", "tidygate keys --help"}},
		// an unknown, or a missing, command
		{[]string{"frob"}, []string{`"frob"`, "tidygate --help"}},
		{[]string{"keys", "frob"}, []string{`"frob"`, "tidygate keys --help"}},
		{[]string{"admin-keys", "frob"}, []string{`"frob"`, "tidygate admin-keys --help"}},
		{[]string{"help", "frob"}, []string{`"frob"`, "tidygate --help"}},
		{nil, []string{"serve", "keys", "tidygate --help"}},
		{[]string{"keys"}, []string{"create", "list", "rotate", "revoke", "tidygate keys --help"}},
		{[]string{"admin-keys"}, []string{"create", "tidygate admin-keys --help"}},
		// an argument too many or too few
		{[]string{"serve", "now"}, []string{`"now"`}},
		{[]string{"config", "all"}, []string{`"all"`}},
		{[]string{"keys", "list", "all"}, []string{`"all"`}},
		{[]string{"healthcheck", "now"}, []string{`"now"`}},
		{[]string{"keys", "create", "--user", "u", "--team", "t", "extra"}, []string{`"extra"`}},
		{[]string{"keys", "rotate", "key_x", "key_y"}, []string{`"key_y"`}},
		{[]string{"keys", "revoke", "--reason", "why not"}, []string{"key ID", "tidygate keys revoke --help"}},
	} {
		for name, environ := range environments {
			code, stdout, stderr := cli(t, environ, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("%q (%s environment): exit %d, stdout %q; want 2 and nothing on stdout", tc.args, name, code, stdout)
			}
			if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(stderr, "tidygate: ") {
				t.Errorf("%q (%s environment): want one line on stderr, got:\n%s", tc.args, name, stderr)
			}
			for _, s := range tc.says {
				if !strings.Contains(stderr, s) {
					t.Errorf("%q (%s environment): the line does not say %s: %q", tc.args, name, s, stderr)
				}
			}
		}
	}
}

// TestHelpListsCommands: tidygate and each group of commands, asked for
// help in any of the ways (-h, --help, help, help COMMAND), print the
// usage of their commands on stdout, exit status 0.
func TestHelpListsCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"-h"}, []string{"tidygate serve", "tidygate keys create", "tidygate keys rotate", "tidygate config", "tidygate healthcheck"}},
		{[]string{"--help"}, []string{"tidygate serve", "tidygate admin-keys create"}},
		{[]string{"help"}, []string{"tidygate serve", "tidygate keys list"}},
		{[]string{"keys", "--help"}, []string{"tidygate keys create", "tidygate keys list", "tidygate keys rotate", "tidygate keys revoke"}},
		{[]string{"keys", "-h"}, []string{"tidygate keys create", "tidygate keys revoke"}},
		{[]string{"keys", "help"}, []string{"tidygate keys create", "tidygate keys revoke"}},
		{[]string{"help", "keys"}, []string{"tidygate keys create", "tidygate keys revoke"}},
		{[]string{"admin-keys", "--help"}, []string{"tidygate admin-keys create"}},
		{[]string{"help", "keys", "create"}, []string{"usage: tidygate keys create", "--daily-budget-usd"}},
		{[]string{"keys", "help", "rotate"}, []string{"usage: tidygate keys rotate", "--grace"}},
		{[]string{"help", "serve"}, []string{"usage: tidygate serve", "--dev-key"}},
	} {
		code, stdout, stderr := cli(t, unreachable, tc.args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q; want 0 and nothing on stderr", tc.args, code, stderr)
		}
		for _, s := range tc.says {
			if !strings.Contains(stdout, s) {
				t.Errorf("%q: the usage does not say %q:\n%s", tc.args, s, stdout)
			}
		}
		if len(tc.args) > 0 && tc.args[0] == "keys" && strings.Contains(stdout, "tidygate serve") {
			t.Errorf("%q: the usage of keys lists other commands:\n%s", tc.args, stdout)
		}
	}
}
