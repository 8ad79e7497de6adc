package main

import (
	"testing"

	"github.com/tidygate/tidygate/internal/infra"
)

// TestTheCallLogsRunWithTidygatesDefaults checks that the harness's own
// call logs (the composed floor's and the writer section's) deliver as
// tidygate does when MLFLOW_WRITER_BATCH_SIZE and
// MLFLOW_WRITER_FLUSH_INTERVAL are not set, so that the floor with the
// call log stays comparable with tidygate.
func TestTheCallLogsRunWithTidygatesDefaults(t *testing.T) {
	cfg, err := infra.LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	opts := callLogOptions(t.TempDir(), 1)
	if opts.BatchSize != cfg.WriterBatchSize || opts.FlushInterval != cfg.WriterFlushInterval {
		t.Errorf("the harness's call logs deliver batches of %d every %s; tidygate's defaults are %d and %s",
			opts.BatchSize, opts.FlushInterval, cfg.WriterBatchSize, cfg.WriterFlushInterval)
	}
}
