package mlflow

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidygate/tidygate/internal/domain"
)

// resettingConns is a Conns that, like tidygate's pools, classifies the errors
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
