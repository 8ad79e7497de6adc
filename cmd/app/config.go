package main

import (
	"fmt"
	"io"
	"maps"
	"sort"

	"github.com/tidygate/tidygate/internal/infra"
)

// printConfig writes the effective configuration, provider settings
// included, one VARIABLE=value per line, with every secret redacted.
func printConfig(cfg infra.Config, ps providerSettings, w io.Writer) error {
	view := cfg.Redacted()
	maps.Copy(view, ps.redacted())
	names := make([]string, 0, len(view))
	for k := range view {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, err := fmt.Fprintf(w, "%s=%s\n", k, view[k]); err != nil {
			return err
		}
	}
	return nil
}
