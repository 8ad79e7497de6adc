package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/tidygate/tidygate/internal/gateway"
)

// sse writes server-sent events to a client, each flushed at once and
// within the per-event write deadline. Every streaming dialect uses it.
type sse struct {
	h  *handler
	w  http.ResponseWriter
	rc *http.ResponseController
	ex *exchange
}

// begin sends the status line and the headers of an event stream, whose
// result headers follow as trailers.
func (s *sse) begin() {
	s.ex.trailers = true
	hdr := s.w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering the stream
	hdr.Set("Trailer", streamTrailers)
	if hdr.Get(modeHeader) == "" {
		hdr.Set(modeHeader, modeTranslated)
	}
	s.w.WriteHeader(http.StatusOK)
}

// end sets the trailers that say who answered and what it cost, and lifts
// the per-event deadline: it must not outlive the stream on a keep-alive
// connection, where the next request may not set its own.
func (s *sse) end(res gateway.Result) {
	setResultHeaders(s.w, res, "")
	setHeaders(s.w, overheadHeader, s.ex.overhead(s.h.now()))
	_ = s.rc.SetWriteDeadline(time.Time{})
}

// send writes v as one unnamed event.
func (s *sse) send(v any) error { return s.event("", v) }

// event writes v as one event named name (unnamed when name is empty).
func (s *sse) event(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	event := make([]byte, 0, len(b)+len(name)+16)
	if name != "" {
		event = append(event, "event: "...)
		event = append(event, name...)
		event = append(event, '\n')
	}
	event = append(event, "data: "...)
	event = append(event, b...)
	event = append(event, "\n\n"...)
	return s.write(event)
}

// write sends an event and flushes it, within the per-event write deadline.
func (s *sse) write(event []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.h.streamWrite)) // a real deadline, whatever clock Options.Now is
	if _, err := s.w.Write(event); err != nil {
		return err
	}
	return s.rc.Flush()
}
