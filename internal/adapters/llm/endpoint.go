package llm

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DefaultTimeout bounds a call of an HTTP provider whose options set no
// timeout. The gateway's per-attempt deadline in ctx usually ends a call
// first.
const DefaultTimeout = 10 * time.Minute

// Endpoint is where and how an HTTP provider adapter calls its API.
type Endpoint struct {
	BaseURL    string        // an absolute http or https URL
	Timeout    time.Duration // bounds each call
	HTTPClient *http.Client  // carries the calls
}

// Resolve checks e for the named provider and fills in the defaults: an
// empty base URL becomes defaultBaseURL, a zero timeout DefaultTimeout, a
// nil client a plain *http.Client. It fails if the base URL is not an
// absolute http or https URL or the timeout is negative.
func (e Endpoint) Resolve(provider, defaultBaseURL string) (Endpoint, error) {
	if e.BaseURL == "" {
		e.BaseURL = defaultBaseURL
	}
	if u, err := url.Parse(e.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Endpoint{}, fmt.Errorf("%s: base URL %q is not an absolute http or https URL", provider, e.BaseURL)
	}
	if e.Timeout < 0 {
		return Endpoint{}, fmt.Errorf("%s: timeout must not be negative, got %s", provider, e.Timeout)
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultTimeout
	}
	if e.HTTPClient == nil {
		e.HTTPClient = &http.Client{}
	}
	return e, nil
}
