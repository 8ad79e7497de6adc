package llm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
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

// Bound returns ctx bounded by the endpoint's timeout, and its cancel
// function. When ctx's own deadline comes first (the gateway's per-attempt
// deadline usually does), ctx is returned as it is: the bound would change
// nothing, and the call is spared a timer.
func (e Endpoint) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= e.Timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.Timeout)
}

// ClientOptions shape the HTTP client of one provider instance: each
// instance has its own client and transport, so that its proxy, its
// trusted certificates, its headers and its connections are its own.
type ClientOptions struct {
	// ProxyURL is the outbound proxy; empty means the environment's
	// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
	ProxyURL string
	// CAFile holds PEM certificates trusted besides the system's.
	CAFile string
	// Headers are added to every request that does not set them itself.
	Headers http.Header
	// ResponseHeaderTimeout bounds the wait for a response's headers (a
	// stream's start); zero means no bound of its own.
	ResponseHeaderTimeout time.Duration
}

// NewHTTPClientWith returns a client like NewHTTPClient's, shaped by o, or
// an error when the proxy URL or the certificate file is unusable.
func NewHTTPClientWith(o ClientOptions) (*http.Client, error) {
	c := NewHTTPClient()
	t := c.Transport.(*http.Transport)
	if o.ProxyURL != "" {
		u, err := url.Parse(o.ProxyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("proxy URL %q is not an absolute http or https URL", o.ProxyURL)
		}
		t.Proxy = http.ProxyURL(u)
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	t.ResponseHeaderTimeout = o.ResponseHeaderTimeout
	if len(o.Headers) > 0 {
		c.Transport = headerTransport{next: t, headers: o.Headers.Clone()}
	}
	return c, nil
}

// headerTransport adds fixed headers to each request that lacks them.
type headerTransport struct {
	next    http.RoundTripper
	headers http.Header
}

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range h.headers {
		if req.Header.Get(k) == "" {
			req.Header[k] = v
		}
	}
	return h.next.RoundTrip(req)
}
