package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/tidygate/tidygate/internal/domain"
)

// TokenEarlyExpiry is how long before its expiry a cached access token is
// replaced, so that no call starts with a token that expires on the way.
const TokenEarlyExpiry = 2 * time.Minute

// tokenFetchTimeout bounds one exchange at a token endpoint. The caller's
// deadline usually ends a call first; this bounds an exchange whose caller
// gave up, which others may be waiting on.
const tokenFetchTimeout = 30 * time.Second

// Tokens hands out an OAuth 2 access token for an upstream's
// Authorization header (a Vertex AI service account's or an Entra ID
// application's), cached until TokenEarlyExpiry before it expires. A
// caller waits at most until its own context ends; one exchange at a time
// runs, and every caller waiting shares its token. It is safe for
// concurrent use.
type Tokens struct {
	fetch    func(ctx context.Context) (*oauth2.Token, error)
	client   *http.Client
	classify Classifier

	lock  chan struct{} // held while a token is read or fetched
	token *oauth2.Token
	now   func() time.Time
}

// NewTokens returns Tokens that get a token with fetch, which must make
// its HTTP calls with the client oauth2.HTTPClient names in its context
// (golang.org/x/oauth2's configurations do). Failures are classified for
// provider.
func NewTokens(provider string, client *http.Client, fetch func(ctx context.Context) (*oauth2.Token, error)) *Tokens {
	return &Tokens{fetch: fetch, client: client, classify: NewClassifier(provider, ""),
		lock: make(chan struct{}, 1), now: time.Now}
}

// Authorize sets h's Authorization header to a bearer token, fetching a
// new one when the cached one expires within TokenEarlyExpiry. A token
// endpoint that refuses the credentials, fails or cannot be reached is a
// domain.KindUpstream failure naming the provider (its answer is not
// quoted: it may echo the credentials); a 429 from it is rate-limited.
func (t *Tokens) Authorize(ctx context.Context, h http.Header) error {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return t.classify.Transport(ctx.Err())
	}
	defer func() { <-t.lock }()
	if t.token == nil || !t.token.Expiry.IsZero() && !t.now().Before(t.token.Expiry.Add(-TokenEarlyExpiry)) {
		tok, err := t.get(ctx)
		if err != nil {
			return err
		}
		t.token = tok
	}
	h.Set("Authorization", "Bearer "+t.token.AccessToken)
	return nil
}

// get runs one exchange, bounded by tokenFetchTimeout and abandoned (not
// cancelled: the exchange's own bound ends it) when ctx ends first, so that
// a caller's short deadline does not throw away a token others will use.
func (t *Tokens) get(ctx context.Context) (*oauth2.Token, error) {
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		tok, err := t.fetch(context.WithValue(fctx, oauth2.HTTPClient, t.client))
		done <- result{tok, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, t.classify.Transport(ctx.Err())
	}
	if r.err != nil {
		return nil, t.failure(r.err)
	}
	if r.tok == nil || r.tok.AccessToken == "" {
		return nil, t.classify.Malformed(errors.New("the token endpoint answered without an access token"))
	}
	return r.tok, nil
}

// failure classifies a failed exchange.
func (t *Tokens) failure(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		de := t.classify.Failure(err)
		de.Message = fmt.Sprintf("%s (getting an access token)", de.Message)
		return de
	}
	status := http.StatusBadRequest
	var header http.Header
	if re.Response != nil {
		status, header = re.Response.StatusCode, re.Response.Header
	}
	code := re.ErrorCode
	if code == "" {
		code = http.StatusText(status)
	}
	if status == http.StatusTooManyRequests {
		return t.classify.HTTP(status, header, "the token endpoint: "+code)
	}
	if status >= http.StatusInternalServerError {
		return t.classify.HTTP(status, header, "the token endpoint failed: "+code)
	}
	// Refused credentials are tidygate's configuration, never the client's request.
	return &domain.Error{Kind: domain.KindUpstream, Err: fmt.Errorf("token endpoint HTTP %d", status),
		Message: fmt.Sprintf("%s: the token endpoint refused tidygate's credentials (HTTP %d, %s)",
			t.classify.provider, status, t.classify.clean(code))}
}
