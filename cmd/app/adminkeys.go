package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// adminKeys runs the admin-keys subcommands: create, for now. The secret is
// printed as the only line on stdout.
func adminKeys(ctx context.Context, env environment, args []string, stdout, stderr io.Writer) error {
	_, args, err := subcommand("admin-keys", args, stdout) // create, for now
	if err != nil {
		return err
	}
	var name, scopeList, reason string
	fs := newFlags("admin-keys create")
	fs.StringVar(&name, "name", "", "who or what the key is for (required)")
	fs.StringVar(&scopeList, "scopes", "", "comma-separated scopes: read, write (required)")
	reasonFlag(fs, &reason)
	if _, err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	var problems []string
	if name == "" {
		problems = append(problems, "--name is required")
	}
	scopes, err := domain.ParseAdminScopes(scopeList)
	if err != nil {
		problems = append(problems, "--scopes: "+err.Error())
	}
	if len(problems) > 0 {
		return usageError{strings.Join(problems, "; ")}
	}
	cfg, err := env()
	if err != nil {
		return err
	}
	if reason, err = cliReason(cfg, reason, stderr); err != nil {
		return err
	}
	return withAdmin(ctx, cfg, stderr, func(ctx context.Context, svc *admin.Service) error {
		key, secret, err := svc.CreateAdminKey(ctx, cliActor(), reason, name, scopes)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created admin key %s %q with scopes %v; the secret below is shown only once\n", key.ID, key.Name, key.Scopes)
		_, err = fmt.Fprintln(stdout, secret)
		return err
	})
}
