package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/infra"
)

func TestMLflowOptionsFromConfig(t *testing.T) {
	cfg := infra.Config{
		MLflowSchema: "verify", MLflowLogMode: "both", MLflowLogContent: "preview", MLflowExperiment: "gw/",
		JournalDir: "/var/lib/tidygate/journal", JournalMaxRecords: 7, JournalWhenFull: "accept",
		WriterBatchSize: 300, WriterFlushInterval: time.Second, DBRequireAtStart: true,
	}
	got, err := mlflowOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := mlflow.Options{Schema: mlflow.SchemaVerify, LogMode: mlflow.LogBoth, Content: mlflow.ContentPreview, ExperimentPrefix: "gw/",
		JournalDir: "/var/lib/tidygate/journal", JournalMaxRecords: 7, RefuseWhenFull: false,
		BatchSize: 300, FlushInterval: time.Second, RequireDatabase: true}
	if got != want {
		t.Errorf("mlflowOptions = %+v\nwant %+v", got, want)
	}
	cfg.JournalWhenFull = "refuse"
	if got, _ := mlflowOptions(cfg); !got.RefuseWhenFull {
		t.Errorf("MLFLOW_JOURNAL_WHEN_FULL=refuse does not refuse")
	}
	cfg.JournalWhenFull = "drop"
	if _, err := mlflowOptions(cfg); err == nil || !strings.Contains(err.Error(), `MLFLOW_JOURNAL_WHEN_FULL="drop"`) {
		t.Errorf("an unknown MLFLOW_JOURNAL_WHEN_FULL: %v", err)
	}
}
