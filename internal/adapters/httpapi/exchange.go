package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// Response headers every response carries.
const (
	requestIDHeader       = "X-Request-Id"
	clientRequestIDHeader = "X-Client-Request-Id"
	overheadHeader        = "X-Tidygate-Overhead-Ms"
)

// maxRequestIDLen bounds a client-supplied X-Request-Id.
const maxRequestIDLen = 128

// exchange is what the handlers learn about one request as it is served.
// It is also the request's context (the server's, with the exchange as
// one more value) and holds the response writer that wraps the client's,
// so that a request takes one allocation for all three.
type exchange struct {
	context.Context
	rw       responseWriter
	id       string // tidygate's own id, unique per request
	clientID string // the client's X-Request-Id, when it sent a valid one
	start    time.Time
	provider time.Duration     // time the gateway spent waiting on providers
	trailers bool              // the overhead is sent as a trailer (streams)
	caller   domain.Caller     // set once authenticated
	dialect  dialect           // the API the request speaks
	limits   domain.RateLimits // the caller's rate limits, once the gateway admitted or refused the call
	// restate says an error about the domain request in the terms of the
	// request the client sent (its own field names), when the dialect's
	// differ from the domain's; nil when they do not.
	restate func(error) error
}

// waited records what of the call was spent waiting on providers and
// between their attempts (gateway.Result.Waiting), which the overhead
// header leaves out.
func (ex *exchange) waited(res gateway.Result) { ex.provider = res.Waiting() }

type exchangeKey struct{}

// Value returns the exchange itself for exchangeKey, and the server
// context's values for any other key (cancellation is the server
// context's, through the embedded Context).
func (ex *exchange) Value(key any) any {
	if key == (exchangeKey{}) {
		return ex
	}
	return ex.Context.Value(key)
}

// exchangeOf returns the request's exchange; every request that reaches a
// handler passes through serveExchange, which makes it the request's context.
func exchangeOf(r *http.Request) *exchange {
	if ex, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		return ex
	}
	return &exchange{} // unreachable through NewHandler
}

// serveExchange is the outermost middleware: it assigns the request id,
// stamps X-Request-Id (and, in the Anthropic dialect, request-id) and
// X-Tidygate-Overhead-Ms on every response, and turns a panic into a 500 so
// that the client gets an answer.
func (h *handler) serveExchange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The id is always tidygate's own: it keys the budget reservation and
		// the audit record, so a client must not be able to repeat it. A
		// client's own id is kept beside it and echoed back.
		ex := &exchange{Context: r.Context(), id: h.newRequestID(), start: h.now(), dialect: dialectOf(r)}
		rw := &ex.rw
		*rw = responseWriter{ResponseWriter: w, ex: ex, now: h.now}
		if sent := r.Header.Get(requestIDHeader); validRequestID(sent) {
			ex.clientID = sent
			setHeaders(rw, clientRequestIDHeader, sent)
		}
		setHeaders(rw, requestIDHeader, ex.id)
		if ex.dialect == dialectAnthropic {
			setHeaders(rw, anthropicRequestIDHeader, ex.id)
		}
		r = r.WithContext(ex)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // net/http's own way to abort a response; it logs nothing
			}
			err := fmt.Errorf("handler panicked: %v\n%s", v, debug.Stack())
			if rw.wrote {
				h.log.LogAttrs(r.Context(), slog.LevelError, "request failed after its response began",
					append(logAttrs(r, ex, http.StatusInternalServerError), slog.String("err", err.Error()))...)
				return
			}
			h.writeError(rw, r, err) // unclassified: a generic 500, the panic in the log only
		}()
		next.ServeHTTP(rw, r)
	})
}

// validRequestID accepts a client's request id, to be recorded and echoed, of at most 128 characters
// from a set that is safe in headers, logs and ids: letters, digits and -_.:+/=.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns a 32-hex-digit id that sorts by time: 48 bits of Unix
// milliseconds followed by 80 random bits.
func newRequestID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// formatMillis renders d in milliseconds with at most three decimals.
func formatMillis(d time.Duration) string {
	d = max(d, 0)
	s := strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// overhead is the time tidygate itself spent on the request so far: not
// the providers' time, nor the pauses between retries (ex.provider holds both).
func (ex *exchange) overhead(now time.Time) string {
	return formatMillis(now.Sub(ex.start) - ex.provider)
}

// responseWriter sets the overhead header just before the status line goes
// out, when the provider time is known.
type responseWriter struct {
	http.ResponseWriter
	ex  *exchange
	now func() time.Time
	// values backs the header values setHeaders sets, a few at a time,
	// where Header.Set makes a slice for each; used counts those taken.
	values [headerValues]string
	used   uint8
	wrote  bool
}

// headerValues is how many header values a response's writer holds: those
// of a usual response (its ids: tidygate's, the client's and, in the
// Anthropic dialect, request-id; who answered, how, and what it cost; its
// type and length; the overhead).
const headerValues = 12

// setHeaders sets headers of w given as name, value pairs, each name in its
// canonical form (as Header.Set would make it). Through the exchange's
// writer, the values take no allocation of their own until it has set
// headerValues of them; through any other, one for all.
func setHeaders(w http.ResponseWriter, pairs ...string) {
	n := len(pairs) / 2
	var values []string
	if rw, ok := w.(*responseWriter); ok && int(rw.used)+n <= len(rw.values) {
		values = rw.values[rw.used : int(rw.used)+n]
		rw.used += uint8(n)
	} else {
		values = make([]string, n)
	}
	hdr := w.Header()
	for i := range values {
		values[i] = pairs[2*i+1]
		hdr[pairs[2*i]] = values[i : i+1 : i+1]
	}
}

// WriteHeader stamps the overhead header, unless it is to be a trailer,
// and the caller's rate limits, and sends the status line.
func (rw *responseWriter) WriteHeader(status int) {
	if !rw.wrote {
		rw.wrote = true
		if !rw.ex.trailers {
			setHeaders(rw, overheadHeader, rw.ex.overhead(rw.now()))
		}
		if rw.ex.limits.Known() {
			setRateLimitHeaders(rw.Header(), rw.ex.dialect, rw.ex.limits, rw.now())
		}
	}
	rw.ResponseWriter.WriteHeader(status)
}

// Write sends the header first if the handler has not.
func (rw *responseWriter) Write(b []byte) (int, error) {
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriter.Write(b)
}

// FlushError writes the header first, so that a flush never bypasses
// WriteHeader; http.ResponseController.Flush calls it.
func (rw *responseWriter) FlushError() error {
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush is FlushError for callers that use http.Flusher.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// writeJSON writes v as the JSON response body with the given status.
func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	out := responseBuffers.Get().(*responseBuffer)
	defer out.release()
	if err := out.enc.Encode(v); err != nil {
		// Every response type here marshals; failing is a bug, never the client's doing.
		h.log.Error("encoding a response failed", "err", err)
		status = http.StatusInternalServerError
		out.buf.Reset()
		out.buf.WriteString(`{"error":{"message":"The server could not encode its response","type":"server_error","param":null,"code":"internal_error"}}` + "\n")
	}
	setHeaders(w, "Content-Type", "application/json", "Content-Length", strconv.Itoa(out.buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(out.buf.Bytes()) // a ResponseWriter keeps nothing of what it is given
}

// responseBuffer is where writeJSON encodes a response body (as
// json.Marshal would, then a newline) before writing it.
type responseBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder // encoding into buf
}

// responseBuffers keep the buffers of the responses written so far, for
// the next.
var responseBuffers = sync.Pool{New: func() any {
	b := new(responseBuffer)
	b.enc = json.NewEncoder(&b.buf)
	return b
}}

// maxPooledResponse bounds the buffers kept for reuse, so that one large
// response (embeddings) does not stay in memory for good.
const maxPooledResponse = 64 << 10

func (b *responseBuffer) release() {
	if b.buf.Cap() > maxPooledResponse {
		return
	}
	b.buf.Reset()
	responseBuffers.Put(b)
}

// logAttrs are the attributes every request log line starts with.
func logAttrs(r *http.Request, ex *exchange, status int) []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", ex.id),
		slog.String("method", r.Method),
		slog.String("path", clip(r.URL.Path)), // a path may be as long as the request line allows
		slog.Int("status", status),
	}
}
