package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The command line follows one set of rules, the same for every command,
// and they are kept here:
//
//   - -h, -help or --help where a flag may stand prints the command's usage
//     on stdout, and the command ends with exit status 0, having done
//     nothing else;
//   - a mistake in the command line (an unknown flag, a bad value, an
//     argument too many or too few) is one line on stderr that names the
//     flag or argument and what is wrong with it, and says where the usage
//     is; exit status 2. The problems keys create and admin-keys create
//     find in their flags taken together (required flags missing, budget
//     specs that cannot be read) are reported all at once instead
//     (docs/ADMIN.md), with the same exit status.
//
// Every command's flags are defined on a flag set from newFlags and parsed
// by parseArgs; nothing else parses the command line.

// command is one command: its path as typed after "tidygate", the
// arguments and flags its usage shows (continuation lines start with a
// newline), and what it does.
type command struct {
	path, synopsis, does string
}

// commands are every command, in the order the usage lists them.
var commands = []command{
	{"serve", "[--dev-key]",
		"Run the gateway until SIGINT or SIGTERM: the API on HTTP_ADDR, metrics and probes on ADMIN_ADDR."},
	{"keys create", "--user U --team T [--models a,b] [--budget SCOPE:PERIOD=USD ...]\n" +
		"[--model-budget MODEL@SCOPE:PERIOD=USD ...] [--daily-budget-usd X] [--monthly-budget-usd Y]\n" +
		"[--team-daily-budget-usd X] [--team-monthly-budget-usd Y] [--replace-budget]\n" +
		"[--rpm N] [--tpm N] [--max-concurrent N]\n" +
		"[--user-rpm N] [--user-tpm N] [--user-max-concurrent N]\n" +
		"[--team-rpm N] [--team-tpm N] [--team-max-concurrent N]\n" +
		"[--expires-in DURATION] [--reason R]",
		"Make an API key for a user of a team; its secret is printed once, as the only line on stdout."},
	{"keys list", "",
		"List the API keys with their limits, budgets, expiry and last use."},
	{"keys rotate", "ID [--grace DURATION] [--reason R]",
		"Give the key ID a new secret, printed once on stdout; the old one keeps working for --grace."},
	{"keys revoke", "ID [--reason R]",
		"Revoke the key ID: every replica refuses it from then on."},
	{"admin-keys create", "--name NAME --scopes read,write [--reason R]",
		"Make an admin key, for the admin API; its secret is printed once, as the only line on stdout."},
	{"config", "",
		"Check the configuration and the catalogue as serve does, then print the configuration, one VARIABLE=value a line, secrets redacted."},
	{"healthcheck", "[--ready] [--timeout DURATION]",
		"Ask the service running on HTTP_ADDR whether it is alive (/healthz) or, with --ready, ready (/readyz)."},
}

// subcommand returns the command of the group at group ("" for tidygate
// itself, "keys", "admin-keys") that args name, and the arguments after
// it. "help" before a command stands for --help after it; -h, -help,
// --help or "help" alone print the usage of the group's commands. See the
// rules above.
func subcommand(group string, args []string, stdout io.Writer) (string, []string, error) {
	if len(args) > 0 && args[0] == "help" {
		args = append(args[1:len(args):len(args)], "--help")
	}
	names := groupCommands(group)
	what := strings.TrimSpace(group + " command")
	if len(args) == 0 {
		return "", nil, misuse(group, "missing %s: %s", what, orList(names))
	}
	switch a := args[0]; {
	case a == "-h" || a == "-help" || a == "--help":
		if _, err := io.WriteString(stdout, groupUsage(group)); err != nil {
			return "", nil, err
		}
		return "", nil, errUsageShown
	case strings.HasPrefix(a, "-"):
		return "", nil, misuse(group, "unknown flag %s", a)
	case !slices.Contains(names, a):
		return "", nil, misuse(group, "unknown %s %q", what, a)
	}
	return args[0], args[1:], nil
}

// groupCommands names the commands of the group at group, in order: the
// word that follows it in the path of each command under it.
func groupCommands(group string) []string {
	var names []string
	for _, c := range commands {
		rest, ok := strings.CutPrefix(c.path, group+" ")
		if group == "" {
			rest, ok = c.path, true
		}
		name, _, _ := strings.Cut(rest, " ")
		if ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// groupUsage is the usage of the commands under group ("" for all).
func groupUsage(group string) string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, c := range commands {
		if group == "" || strings.HasPrefix(c.path, group+" ") {
			b.WriteString(synopsis("  ", c) + "\n")
		}
	}
	fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for what a command does and its flags.\n", strings.TrimSpace("tidygate "+group))
	if group == "" {
		b.WriteString("The configuration comes from the environment; 'tidygate config' prints it.\n")
	}
	return b.String()
}

// orList renders names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// synopsis renders the usage line of c after prefix, its continuation
// lines aligned under its first argument.
func synopsis(prefix string, c command) string {
	head := prefix + "tidygate " + c.path
	if c.synopsis == "" {
		return head
	}
	return head + " " + strings.ReplaceAll(c.synopsis, "\n", "\n"+strings.Repeat(" ", len(head)+1))
}

// errUsageShown says that the usage was asked for and printed: run ends
// with exit status 0 and nothing else was done.
var errUsageShown = errors.New("usage shown")

// misuse is a mistake in the command line of the command at path: one
// line, ending with where its usage is.
func misuse(path, format string, a ...any) error {
	return usageError{fmt.Sprintf(format, a...) + fmt.Sprintf(" (see '%s --help')", strings.TrimSpace("tidygate "+path))}
}

// newFlags returns the flag set of the command at path, which must be in
// commands, for its flags to be defined on and then parsed by parseArgs.
func newFlags(path string) *flag.FlagSet {
	if _, ok := findCommand(path); !ok {
		panic("cmd/app: no command " + path + " in commands")
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parseArgs says what went wrong, once
	return fs
}

func findCommand(path string) (command, bool) {
	for _, c := range commands {
		if c.path == path {
			return c, true
		}
	}
	return command{}, false
}

// parseArgs parses args with fs, whose name is the command's path, flags
// before or after the operands, and returns the operands: exactly one for
// each of operands, which name them for the line that says one is
// missing. See the rules above.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer, operands ...string) ([]string, error) {
	var got []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			if err := writeCommandUsage(stdout, fs); err != nil {
				return nil, err
			}
			return nil, errUsageShown
		}
		if err != nil {
			return nil, misuse(fs.Name(), "%s", flagProblem(fs, err))
		}
		if fs.NArg() == 0 {
			break
		}
		got = append(got, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(got) > len(operands) {
		return nil, misuse(fs.Name(), "unexpected argument %q", got[len(operands)])
	}
	if len(got) < len(operands) {
		return nil, misuse(fs.Name(), "%s needs %s", fs.Name(), operands[len(got)])
	}
	return got, nil
}

// writeCommandUsage writes the usage of the command fs parses: its
// synopsis, what it does, and its flags.
func writeCommandUsage(w io.Writer, fs *flag.FlagSet) error {
	c, _ := findCommand(fs.Name())
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n", synopsis("usage: ", c), c.does)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nflags:\n")
			first = false
		}
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n      %s", text)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// The flag package's messages, which flagProblem rewrites.
var (
	flagBadValue = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-(\S+): (.*)$`)
	flagNoValue  = regexp.MustCompile(`^flag needs an argument: -(\S+)$`)
	flagUnknown  = regexp.MustCompile(`^flag provided but not defined: -(\S+)$`)
)

// flagProblem says what err, from parsing fs, found wrong, naming flags as
// the usage does (--name) and saying what a value that does not parse
// should have been.
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagUnknown.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return "--" + m[1] + " needs a value"
	}
	m := flagBadValue.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	why := m[3]
	switch why {
	case "parse error":
		why = "not " + flagKind(fs.Lookup(m[2]))
	case "value out of range":
		why = "out of range"
	}
	return fmt.Sprintf("invalid value %s for --%s: %s", m[1], m[2], why)
}

// flagKind says what kind of value f takes, for a value that is not one.
func flagKind(f *flag.Flag) string {
	var v any
	if f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			v = g.Get()
		}
	}
	switch v.(type) {
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration such as 90s, 15m or 24h"
	case bool:
		return "true or false"
	}
	return "a valid value"
}
