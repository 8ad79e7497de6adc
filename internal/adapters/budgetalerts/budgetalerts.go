// Package budgetalerts delivers the budget alerts a spend ledger raised:
// it claims them from the ledger's outbox (ports.AlertOutbox), writes each
// once as a log line and a metric, and POSTs it to a webhook signed with
// HMAC-SHA256, retrying with exponential backoff until the receiver takes
// it. It runs beside the calls, never in their way: an alert is raised in
// the transaction that settles a call, and delivered later from the
// outbox, so that neither a slow receiver nor a crash can hold up a call
// or lose an alert.
package budgetalerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// SignatureHeader carries the body's HMAC-SHA256 under the webhook secret,
// as "sha256=" and the lowercase hex digest.
const SignatureHeader = "X-Tidygate-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body under secret,
// comparing in constant time: what a receiver does.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// Options configure a Dispatcher.
type Options struct {
	URL    string // the webhook; empty: alerts are logged and counted only
	Secret []byte // the HMAC key of SignatureHeader
	Client *http.Client
	Logger *slog.Logger
	// Count adds one to the metric of fired alerts (called once per alert).
	Count func(domain.BudgetAlert)
	// Lease is how long a claimed alert is left to this replica before
	// another may deliver it; 0 is one minute.
	Lease time.Duration
	// MaxBackoff bounds the pause between retries; 0 is one hour. The
	// first retry waits a second, each next one twice as long.
	MaxBackoff time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Dispatcher delivers the alerts of one outbox.
type Dispatcher struct {
	outbox ports.AlertOutbox
	opts   Options
}

// New returns a dispatcher of outbox's alerts.
func New(outbox ports.AlertOutbox, opts Options) *Dispatcher {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Count == nil {
		opts.Count = func(domain.BudgetAlert) {}
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Dispatcher{outbox: outbox, opts: opts}
}

// batch is how many alerts one poll claims.
const batch = 50

// Poll delivers the alerts due now, once each: the first claim of an
// alert writes its log line and counts it; every claim tries the webhook.
func (d *Dispatcher) Poll(ctx context.Context) error {
	now := d.opts.Now()
	alerts, err := d.outbox.ClaimAlerts(ctx, now, batch, d.opts.Lease)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if a.Attempts == 0 {
			d.opts.Logger.Warn("budget alert: "+messageOf(a),
				"alert_id", a.ID, "budget", a.Budget.String(), "threshold_percent", a.Threshold, "refused", a.Refused(),
				"limit_usd", a.Budget.Limit.String(), "spent_usd", a.Spent.String(),
				"period_start", a.PeriodStart.Format(time.RFC3339))
			d.opts.Count(a)
		}
		if err := d.deliver(ctx, a); err != nil {
			next := now.Add(d.backoff(a.Attempts))
			d.opts.Logger.Warn("budget alert webhook failed; will retry", "alert_id", a.ID, "attempt", a.Attempts+1,
				"retry_at", next.Format(time.RFC3339), "err", err)
			if ferr := d.outbox.AlertFailed(ctx, a.ID, next, err.Error()); ferr != nil {
				return ferr
			}
			continue
		}
		if err := d.outbox.AlertDelivered(ctx, a.ID); err != nil {
			return err
		}
	}
	return nil
}

// backoff is the pause after the given number of failed attempts before
// the last one: a second, doubled each time, at most MaxBackoff.
func (d *Dispatcher) backoff(failedBefore int) time.Duration {
	wait := time.Second
	for range failedBefore {
		if wait >= d.opts.MaxBackoff {
			break
		}
		wait *= 2
	}
	return min(wait, d.opts.MaxBackoff)
}

// Body is the JSON an alert is POSTed as. Receivers deduplicate by ID: an
// alert is delivered at least once (again when a replica dies between
// sending it and marking it delivered).
type Body struct {
	ID               int64  `json:"id"`
	Scope            string `json:"scope"`
	ScopeID          string `json:"scope_id"`
	Period           string `json:"period"`
	Model            string `json:"model,omitempty"`
	PeriodStart      string `json:"period_start"`
	ThresholdPercent int    `json:"threshold_percent"`
	LimitUSD         string `json:"limit_usd"`
	SpentUSD         string `json:"spent_usd"`
	LimitMicros      int64  `json:"limit_micros"`
	SpentMicros      int64  `json:"spent_micros"`
	FiredAt          string `json:"fired_at"`
	// Refused is true when the budget raised the alert by refusing a call
	// whose worst case no longer fits in what is left, short of the
	// threshold (only the 100 % alert): spending has not reached it.
	Refused bool   `json:"refused"`
	Message string `json:"message"`
}

func bodyOf(a domain.BudgetAlert) Body {
	return Body{ID: a.ID, Scope: string(a.Budget.Scope), ScopeID: a.Budget.ScopeID, Period: string(a.Budget.Period),
		Model: a.Budget.Model, PeriodStart: a.PeriodStart.Format(time.RFC3339), ThresholdPercent: a.Threshold,
		LimitUSD: usd(a.Budget.Limit), SpentUSD: usd(a.Spent), LimitMicros: int64(a.Budget.Limit), SpentMicros: int64(a.Spent),
		FiredAt: a.At.UTC().Format(time.RFC3339), Refused: a.Refused(), Message: messageOf(a)}
}

func messageOf(a domain.BudgetAlert) string {
	if a.Refused() {
		return fmt.Sprintf("%s has spent %s of %s and refuses calls: the worst case of the next one no longer fits (%d%% alert)",
			a.Budget, a.Spent, a.Budget.Limit, a.Threshold)
	}
	return fmt.Sprintf("%s has spent %s of %s (%d%% reached)", a.Budget, a.Spent, a.Budget.Limit, a.Threshold)
}

func usd(m domain.Micros) string { return strings.TrimPrefix(m.String(), "$") }

// deliver POSTs a to the webhook, if there is one; only a 2xx answer
// delivers it.
func (d *Dispatcher) deliver(ctx context.Context, a domain.BudgetAlert) error {
	if d.opts.URL == "" {
		return nil
	}
	body, err := json.Marshal(bodyOf(a))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(d.opts.Secret, body))
	req.Header.Set("X-Tidygate-Alert-Id", fmt.Sprint(a.ID))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}
