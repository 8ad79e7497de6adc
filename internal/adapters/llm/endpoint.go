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

// MaxIdleConnsPerHost is how many idle keep-alive connections an adapter's
// default client keeps to its API. A gateway sends all of its traffic to a
// few hosts: Go's default of 2 would close and reopen a connection for
// almost every call under concurrent load (measured: TIME_WAIT churn and
// half the CPU in the kernel at 64 concurrent calls).
const MaxIdleConnsPerHost = 256

// NewHTTPClient returns the client an adapter uses when its options give
// none: Go's default transport (proxy from the environment, HTTP/2, dial and
// TLS timeouts) keeping up to MaxIdleConnsPerHost idle connections per host.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return &http.Client{Transport: t}
}

// Resolve checks e for the named provider and fills in the defaults: an
// empty base URL becomes defaultBaseURL, a zero timeout DefaultTimeout, a
// nil client NewHTTPClient's. It fails if the base URL is not an
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
		e.HTTPClient = NewHTTPClient()
	}
	return e, nil
}
