package llm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tidygate/tidygate/internal/domain"
)

// Pass-through (domain.NativeRequest): what the adapters that take a
// request in their own dialect share. A passed-through body is edited in
// place, never decoded and encoded again, so that every byte tidygate does
// not have to change reaches the provider (and the client) as it was:
// ValueAt finds a value's bytes, Replace and Insert splice new ones in.

// ValueAt returns the bytes of the value at path in doc, a JSON object,
// following object keys (the first of repeated keys), with its offsets; ok
// is false when doc is not an object or has no such value.
func ValueAt(doc []byte, path ...string) (value []byte, start, end int, ok bool) {
	if len(path) == 0 {
		return nil, 0, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	for depth := 0; ; depth++ {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, 0, 0, false
		}
		found := false
		for dec.More() {
			tok, err := dec.Token()
			key, isKey := tok.(string)
			if err != nil || !isKey {
				return nil, 0, 0, false
			}
			if key == path[depth] {
				found = true
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, 0, false
			}
		}
		if !found {
			return nil, 0, 0, false
		}
		if depth == len(path)-1 {
			start = skipColon(doc, int(dec.InputOffset()))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, 0, 0, false
			}
			end = int(dec.InputOffset())
			return doc[start:end], start, end, true
		}
	}
}

// skipColon returns the offset of the value that follows a key ending at i.
func skipColon(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' || doc[i] == '\n' || doc[i] == ':') {
		i++
	}
	return i
}

// Replace returns doc with the value at path replaced by raw (valid JSON),
// and false, doc unchanged, when there is no such value.
func Replace(doc []byte, raw []byte, path ...string) ([]byte, bool) {
	_, start, end, ok := ValueAt(doc, path...)
	if !ok {
		return doc, false
	}
	out := make([]byte, 0, len(doc)-(end-start)+len(raw))
	out = append(out, doc[:start]...)
	out = append(out, raw...)
	return append(out, doc[end:]...), true
}

// Insert returns doc, a JSON object, with "key": raw added as its first
// member.
func Insert(doc []byte, key string, raw []byte) []byte {
	open := bytes.IndexByte(doc, '{')
	if open < 0 {
		return doc
	}
	name, _ := json.Marshal(key)
	out := make([]byte, 0, len(doc)+len(name)+len(raw)+2)
	out = append(out, doc[:open+1]...)
	out = append(out, name...)
	out = append(out, ':')
	out = append(out, raw...)
	if rest := bytes.TrimLeft(doc[open+1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, doc[open+1:]...)
}

// SetString returns doc with the string at path replaced by s; a value
// that is absent, or not a string, is left as it is.
func SetString(doc []byte, s string, path ...string) []byte {
	v, _, _, ok := ValueAt(doc, path...)
	if !ok || len(v) == 0 || v[0] != '"' {
		return doc
	}
	raw, _ := json.Marshal(s)
	out, _ := Replace(doc, raw, path...)
	return out
}

// UpstreamBody is a passed-through request body as it goes upstream: the
// model replaced by the upstream name and, when the body sets none of the
// fields in capFields, the output cap added as capFields[0]. A body whose
// "model" is not a string is refused.
func UpstreamBody(c Classifier, req domain.NativeRequest, capFields ...string) ([]byte, error) {
	v, _, _, ok := ValueAt(req.Body, "model")
	if !ok || len(v) == 0 || v[0] != '"' {
		return nil, c.Invalid("the request has no model")
	}
	body := SetString(req.Body, req.Model, "model")
	if req.MaxTokens <= 0 || len(capFields) == 0 {
		return body, nil
	}
	for _, f := range capFields {
		if v, _, _, ok := ValueAt(body, f); ok && string(v) != "null" {
			return body, nil
		}
	}
	n := []byte(strconv.Itoa(req.MaxTokens))
	if out, ok := Replace(body, n, capFields[0]); ok { // present as null
		return out, nil
	}
	return Insert(body, capFields[0], n), nil
}

// PassHeaders copies into dst the client's headers of req that the
// provider's dialect lets through: each name in names (canonical form).
func PassHeaders(dst http.Header, req domain.NativeRequest, names ...string) {
	for _, name := range names {
		if v := req.Header[name]; len(v) > 0 {
			dst[name] = append([]string(nil), v...)
		}
	}
}

// RawEvent is one server-sent event as it was received.
type RawEvent struct {
	Raw    []byte // every line of the event, its blank line included
	Name   string // the event field, if any
	Data   []byte // the data lines, joined by newlines
	dataAt int    // offset of Data in Raw when it came on one line, else -1
}

// WithData returns the event's bytes with its data replaced by data (one
// line), the other fields as they were.
func (e RawEvent) WithData(data []byte) []byte {
	if e.dataAt >= 0 {
		out := make([]byte, 0, len(e.Raw)-len(e.Data)+len(data))
		out = append(out, e.Raw[:e.dataAt]...)
		out = append(out, data...)
		return append(out, e.Raw[e.dataAt+len(e.Data):]...)
	}
	var out []byte
	for _, line := range bytes.SplitAfter(e.Raw, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("data:")) || len(bytes.TrimRight(line, "\r\n")) == 0 {
			continue
		}
		out = append(out, line...)
	}
	out = append(out, "data: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}

// RawEvents reads server-sent events whole, for passing them on.
type RawEvents struct {
	r *bufio.Reader
}

// NewRawEvents returns a RawEvents reading body.
func NewRawEvents(body io.Reader) *RawEvents {
	return &RawEvents{r: bufio.NewReaderSize(body, 16<<10)}
}

// Next returns the next event that has data (comments and events without
// data are skipped), or io.EOF at the end of the body. An event cut off by
// the end of the body is returned as it is; an event longer than
// MaxEventBytes is an error.
func (e *RawEvents) Next() (RawEvent, error) {
	var ev RawEvent
	ev.dataAt = -1
	for {
		line, err := readLine(e.r)
		if err != nil && !errors.Is(err, io.EOF) {
			return RawEvent{}, err
		}
		eof := err != nil
		if len(ev.Raw)+len(line) > MaxEventBytes {
			return RawEvent{}, fmt.Errorf("a stream event exceeds %d bytes", MaxEventBytes)
		}
		at := len(ev.Raw)
		ev.Raw = append(ev.Raw, line...)
		content := bytes.TrimRight(line, "\r\n")
		switch {
		case len(content) == 0 && len(line) > 0:
			if ev.Data != nil {
				return ev, nil
			}
			ev = RawEvent{dataAt: -1} // an event without data: skipped
		case bytes.HasPrefix(content, []byte("data:")):
			v := bytes.TrimPrefix(content[len("data:"):], []byte(" "))
			if ev.Data != nil {
				ev.Data = append(append(ev.Data, '\n'), v...)
				ev.dataAt = -1
			} else {
				ev.Data = append([]byte{}, v...)
				ev.dataAt = at + len(content) - len(v)
			}
		case bytes.HasPrefix(content, []byte("event:")):
			ev.Name = string(bytes.TrimSpace(content[len("event:"):]))
		}
		if eof {
			if ev.Data != nil {
				return ev, nil
			}
			return RawEvent{}, io.EOF
		}
	}
}

// Step is what a dialect's parser makes of one event of a passed-through
// stream.
type Step struct {
	Event domain.NativeEvent // Text, Output and Usage; Raw is filled in by Forward
	Data  []byte             // the event's data to send instead of the provider's; nil: unchanged
	Hold  bool               // a prelude event, held back until an event that is not one
	Last  bool               // the event that ends a complete stream
	Err   error              // a failure the provider reported in the stream: not forwarded, it ends the stream
}

// whole ends an event cut off by the end of the body with its blank line,
// so that the client's reader dispatches it.
func whole(raw []byte) []byte {
	for !bytes.HasSuffix(raw, []byte("\n\n")) && !bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
		raw = append(raw, '\n')
	}
	return raw
}

// Forward passes a stream's events on to emit as they arrive, as parse
// reads them, and returns the last count the stream carried (nil when none
// did) and the answer's text. Prelude events (Step.Hold) are held back
// until an event that is not one, so that a failure the provider reports
// before answering leaves the call free to be retried. A stream that ends
// without its last event is a malformed answer.
func Forward(c Classifier, body io.Reader, parse func(RawEvent) Step, emit func(domain.NativeEvent) error) (*domain.Usage, string, error) {
	events := NewRawEvents(body)
	var usage *domain.Usage
	var text bytes.Buffer
	var held []domain.NativeEvent
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			return usage, text.String(), c.Malformed(errors.New("the stream ended before its last event"))
		}
		if err != nil {
			return usage, text.String(), c.Failure(err)
		}
		step := parse(ev)
		out := step.Event
		if out.Usage != nil {
			u := *out.Usage
			usage = &u
		}
		if step.Err != nil {
			return usage, text.String(), step.Err
		}
		out.Raw = ev.Raw
		if step.Data != nil {
			out.Raw = ev.WithData(step.Data)
		}
		out.Raw = whole(out.Raw)
		text.WriteString(out.Text)
		if step.Hold {
			held = append(held, out)
			continue
		}
		for _, h := range held {
			if err := emit(h); err != nil {
				return usage, text.String(), err
			}
		}
		held = nil
		if err := emit(out); err != nil {
			return usage, text.String(), err
		}
		if step.Last {
			return usage, text.String(), nil
		}
	}
}
