package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxResponseBody bounds a non-streamed answer; maxErrorBody bounds how much
// of an error answer is read for its message.
const (
	maxResponseBody = 64 << 20
	maxErrorBody    = 8192
)

// JSONPost is how an HTTP provider adapter POSTs JSON to its API: one
// attempt, credentials set on each request, and every answer but a 2xx one
// classified.
type JSONPost struct {
	// Client carries the calls.
	Client *http.Client
	// Classify classifies the failures.
	Classify Classifier
	// Authorize sets a request's credentials (a fixed header, or a token
	// it may have to fetch first); nil sets none.
	Authorize func(ctx context.Context, h http.Header) error
	// ErrorDetail reads an error answer: the provider's own message in
	// raw, and the header to classify it with (the answer's, or a copy
	// with what the body says about retrying). Nil quotes raw as it is.
	ErrorDetail func(raw []byte, h http.Header) (string, http.Header)
}

// Send POSTs body as JSON to url, accepting the media type accept, and
// returns the answer when its status is 2xx; any other answer, or none, is
// a classified error.
func (j JSONPost) Send(ctx context.Context, url string, body any, accept string) (*http.Response, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, j.Classify.Invalid("cannot encode the request: %v", err)
	}
	return j.SendRaw(ctx, url, payload, nil, accept)
}

// SendRaw is Send for a body already encoded (a passed-through request's),
// with header (the client's headers the dialect lets through) set before
// the credentials.
func (j JSONPost) SendRaw(ctx context.Context, url string, payload []byte, header http.Header, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, j.Classify.Failure(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "tidygate")
	if j.Authorize != nil {
		if err := j.Authorize(ctx, req.Header); err != nil {
			return nil, err
		}
	}
	resp, err := j.Client.Do(req)
	if err != nil {
		return nil, j.Classify.Failure(err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil && ctx.Err() != nil {
		return nil, j.Classify.Failure(ctx.Err())
	}
	detail, header := string(raw), resp.Header
	if j.ErrorDetail != nil {
		detail, header = j.ErrorDetail(raw, resp.Header)
	}
	return nil, j.Classify.HTTP(resp.StatusCode, header, detail)
}

// Call POSTs body as JSON to url and decodes the JSON answer into out.
func (j JSONPost) Call(ctx context.Context, url string, body, out any) error {
	resp, err := j.Send(ctx, url, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	defer drain(resp.Body) // before Close
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return j.Classify.Failure(err)
	}
	return nil
}

// ReadAnswer reads a non-streamed answer of at most maxResponseBody bytes
// and closes it.
func (j JSONPost) ReadAnswer(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, j.Classify.Failure(err)
	}
	if len(body) > maxResponseBody {
		return nil, j.Classify.Malformed(fmt.Errorf("the answer exceeds %d bytes", maxResponseBody))
	}
	return body, nil
}

// drain reads what is left of a small answer (the newline after the JSON,
// say) before it is closed: a body closed before its end costs the
// connection its keep-alive.
func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
}

// StaticHeader returns an Authorize function that sets header on every
// request: fixed credentials such as an API key header.
func StaticHeader(header http.Header) func(context.Context, http.Header) error {
	return func(_ context.Context, h http.Header) error {
		for name, values := range header {
			h[name] = values
		}
		return nil
	}
}
