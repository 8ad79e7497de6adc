package mlflow

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
)

func TestOptionsFromConfig(t *testing.T) {
	cfg := infra.Config{
		MLflowSchema: "verify", MLflowLogMode: "both", MLflowLogContent: "preview", MLflowExperiment: "gw/",
		JournalDir: "/var/lib/tidygate/journal", JournalMaxRecords: 7, JournalWhenFull: "accept",
		WriterBatchSize: 300, WriterFlushInterval: time.Second, DBRequireAtStart: true,
	}
	got, err := optionsFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Schema: SchemaVerify, LogMode: LogBoth, Content: ContentPreview, ExperimentPrefix: "gw/",
		JournalDir: "/var/lib/tidygate/journal", JournalMaxRecords: 7, RefuseWhenFull: false,
		BatchSize: 300, FlushInterval: time.Second, RequireDatabase: true}
	if got != want {
		t.Errorf("optionsFrom = %+v\nwant %+v", got, want)
	}
	cfg.JournalWhenFull = "refuse"
	if got, _ := optionsFrom(cfg); !got.RefuseWhenFull {
		t.Errorf("MLFLOW_JOURNAL_WHEN_FULL=refuse does not refuse")
	}
	cfg.JournalWhenFull = "drop"
	if _, err := optionsFrom(cfg); err == nil || !strings.Contains(err.Error(), `MLFLOW_JOURNAL_WHEN_FULL="drop"`) {
		t.Errorf("an unknown MLFLOW_JOURNAL_WHEN_FULL: %v", err)
	}
}

// resettingConns is a Conns that, like infra.Pool, classifies the errors
// met on its connections.
type resettingConns struct {
	downConns
	seen []error
}

func (r *resettingConns) Classify(err error) error {
	r.seen = append(r.seen, err)
	return domain.Wrap(domain.KindUnavailable, err, "server went away")
}

func TestTheStoreLetsThePoolClassifyItsErrors(t *testing.T) {
	conns := &resettingConns{}
	st := newStore(conns, testOptions(t), slog.New(slog.DiscardHandler))
	cause := &pgconn.PgError{Code: "25006"} // read_only_sql_transaction: a failover
	err := st.classify(cause, "write calls")
	if len(conns.seen) != 1 || !errors.Is(err, cause) || domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("classify = %v (pool saw %v), want the pool's unavailable error", err, conns.seen)
	}
	if err := classify(&pgconn.PgError{Code: "42703"}, "write"); domain.KindOf(err) != domain.KindInternal {
		t.Errorf("an undefined column is %v, want internal", domain.KindOf(err))
	}
	if err := classify(&pgconn.PgError{Code: "57P01"}, "write"); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("admin shutdown is %v, want unavailable", domain.KindOf(err))
	}
	if !refused(&pgconn.PgError{Code: "22001"}) || refused(&pgconn.PgError{Code: "40001"}) || refused(errors.New("timeout")) {
		t.Errorf("refused misclassifies data errors")
	}
}
