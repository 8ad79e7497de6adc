package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/tidygate/tidygate/internal/domain"
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
	// ErrorFields, when set, reads the request parameter at fault and the
	// provider's code for the error from an error answer (empty when it
	// names none), which a refusal of the request itself (domain.KindInvalid)
	// carries to the client, so that its SDK sees them.
	ErrorFields func(raw []byte) (param, code string)
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

// The values of the headers every request carries, made once: a request's
// header shares them, and nothing writes into a header's values (Set and
// Add replace or extend the slice).
var (
	jsonMedia  = []string{"application/json"}
	eventMedia = []string{"text/event-stream"}
	userAgent  = []string{"tidygate"}
)

// mediaValue is the Accept header's value for media type accept.
func mediaValue(accept string) []string {
	switch accept {
	case jsonMedia[0]:
		return jsonMedia
	case eventMedia[0]:
		return eventMedia
	}
	return []string{accept}
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
	req.Header["Content-Type"] = jsonMedia
	req.Header["Accept"] = mediaValue(accept)
	req.Header["User-Agent"] = userAgent
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
	e := j.Classify.HTTP(resp.StatusCode, header, detail)
	if j.ErrorFields != nil && e.Kind == domain.KindInvalid {
		param, code := j.ErrorFields(raw)
		e.Param, e.Code = j.Classify.clean(param), j.Classify.clean(code)
	}
	return nil, e
}

// Call POSTs body as JSON to url and decodes the JSON answer into out.
func (j JSONPost) Call(ctx context.Context, url string, body, out any) error {
	resp, err := j.Send(ctx, url, body, "application/json")
	if err != nil {
		return err
	}
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	answer, err := j.read(resp, (*buf)[:0])
	if cap(answer) <= maxPooledAnswer { // a larger one is left to the collector
		*buf = answer
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return j.Classify.Malformed(err)
	}
	return nil
}

// answers holds the buffers Call reads answers into: an answer is decoded
// from the buffer, its strings copied out, so that the buffer is free again
// once Call returns.
var answers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledAnswer bounds the buffers answers keeps.
const maxPooledAnswer = 64 << 10

// ReadAnswer reads a non-streamed answer of at most maxResponseBody bytes
// and closes it. The bytes are the caller's: one allocation of the answer's
// size when the upstream sends its length.
func (j JSONPost) ReadAnswer(resp *http.Response) ([]byte, error) {
	var body []byte
	if n := resp.ContentLength; n >= 0 && n <= maxResponseBody {
		body = make([]byte, 0, n+1) // +1: room to read the end without growing
	}
	return j.read(resp, body)
}

// read appends the answer's body to buf, reading at most maxResponseBody
// bytes, and closes it.
func (j JSONPost) read(resp *http.Response, buf []byte) ([]byte, error) {
	defer resp.Body.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxResponseBody {
			return buf, j.Classify.Malformed(fmt.Errorf("the answer exceeds %d bytes", maxResponseBody))
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, j.Classify.Failure(err)
		}
	}
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
