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
	"sync"

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
//
// It reads doc's bytes in place, without decoding them: each of its
// callers has decoded doc before (the HTTP edge checks a client's body, an
// adapter decodes an answer or an event before renaming its model), so the
// members passed on the way are only delimited, and the value found is
// checked to be JSON on its own.
func ValueAt(doc []byte, path ...string) (value []byte, start, end int, ok bool) {
	if len(path) == 0 {
		return nil, 0, 0, false
	}
	for _, name := range path {
		if _, start, ok = member(doc, start, name); !ok {
			return nil, 0, 0, false
		}
	}
	if end = endOfValue(doc, start); end < 0 || !json.Valid(doc[start:end]) {
		return nil, 0, 0, false
	}
	return doc[start:end], start, end, true
}

// member finds the member name (the first of repeated keys) of the JSON
// object that starts at offset i of doc, after any white space: the
// offsets of its key and of its value; ok is false when no object starts
// there or it has no such member.
func member(doc []byte, i int, name string) (key, value int, ok bool) {
	if i = skipSpace(doc, i); i >= len(doc) || doc[i] != '{' {
		return 0, 0, false
	}
	i = skipSpace(doc, i+1)
	for {
		keyEnd := endOfString(doc, i)
		if keyEnd < 0 {
			return 0, 0, false // the object's end: no such key
		}
		colon := skipSpace(doc, keyEnd)
		if colon >= len(doc) || doc[colon] != ':' {
			return 0, 0, false
		}
		value = skipSpace(doc, colon+1)
		if keyIs(doc[i:keyEnd], name) {
			return i, value, true
		}
		end := endOfValue(doc, value)
		if end < 0 {
			return 0, 0, false
		}
		if i = skipSpace(doc, end); i >= len(doc) || doc[i] != ',' {
			return 0, 0, false
		}
		i = skipSpace(doc, i+1)
	}
}

// skipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' || doc[i] == '\n') {
		i++
	}
	return i
}

// endOfString returns the offset just past the JSON string that starts at
// i, or -1 when no string starts there or it is not closed.
func endOfString(doc []byte, i int) int {
	if i >= len(doc) || doc[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++ // the escaped byte
		case '"':
			return j + 1
		}
	}
	return -1
}

// endOfValue returns the offset just past the JSON value that starts at i
// (a string, an object or array up to its matching bracket, or a number or
// literal up to the next delimiter), or -1 when none is there.
func endOfValue(doc []byte, i int) int {
	if i >= len(doc) {
		return -1
	}
	switch doc[i] {
	case '"':
		return endOfString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				if j = endOfString(doc, j); j < 0 {
					return -1
				}
				j-- // the loop steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(doc) && doc[j] != ',' && doc[j] != '}' && doc[j] != ']' && skipSpace(doc, j) == j {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// keyIs reports whether the JSON string raw (its quotes included) is name.
// Only a key with an escape in it is decoded.
func keyIs(raw []byte, name string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	var key string
	return json.Unmarshal(raw, &key) == nil && key == name
}

// appendString appends s to dst as a JSON string, as encoding/json writes it.
func appendString(dst []byte, s string) []byte {
	if !plain(s) {
		raw, _ := json.Marshal(s) // a string always encodes
		return append(dst, raw...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plain reports whether s is written between quotes as it is: printable
// ASCII without the characters encoding/json escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
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
	out := make([]byte, 0, len(doc)+len(key)+len(raw)+4)
	out = append(out, doc[:open+1]...)
	out = appendString(out, key)
	out = append(out, ':')
	out = append(out, raw...)
	if rest := doc[skipSpace(doc, open+1):]; len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, doc[open+1:]...)
}

// Remove returns doc, a JSON object, without its member key (the first of
// repeated keys) and the comma that parted it from the next member or,
// for the last one, from the one before; doc itself is returned when it
// has no such member.
func Remove(doc []byte, key string) []byte {
	from, start, ok := member(doc, 0, key)
	if !ok {
		return doc
	}
	to := endOfValue(doc, start)
	if to < 0 {
		return doc
	}
	if next := skipSpace(doc, to); next < len(doc) && doc[next] == ',' {
		to = skipSpace(doc, next+1)
	} else if before := bytes.TrimRight(doc[:from], " \t\r\n"); bytes.HasSuffix(before, []byte(",")) {
		from = len(before) - 1
	}
	out := make([]byte, 0, len(doc)-(to-from))
	out = append(out, doc[:from]...)
	return append(out, doc[to:]...)
}

// SetString returns doc with the string at path replaced by s; a value
// that is absent, or not a string, is left as it is, and so is doc when
// the value is s already (doc itself is returned, not a copy).
func SetString(doc []byte, s string, path ...string) []byte {
	v, start, end, ok := ValueAt(doc, path...)
	if !ok || v[0] != '"' || plain(s) && len(v) == len(s)+2 && string(v[1:len(v)-1]) == s {
		return doc
	}
	out := make([]byte, 0, len(doc)-len(v)+len(s)+2)
	out = appendString(append(out, doc[:start]...), s)
	return append(out, doc[end:]...)
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

// PassHeaders returns the client's headers of req that the provider's
// dialect lets through (each name in names, canonical form), or nil when
// the client sent none of them.
func PassHeaders(req domain.NativeRequest, names ...string) http.Header {
	var out http.Header
	for _, name := range names {
		if v := req.Header[name]; len(v) > 0 {
			if out == nil {
				out = make(http.Header, len(names))
			}
			out[name] = append([]string(nil), v...)
		}
	}
	return out
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
	return &RawEvents{r: bufio.NewReaderSize(body, eventBuffer)}
}

// eventBuffer is the size of the buffer a stream is read through.
const eventBuffer = 16 << 10

// eventReaders holds the buffered readers Forward reads streams through:
// an event's bytes are copied out of the reader (RawEvent.Raw), so that a
// reader is free again once its stream is over.
var eventReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, eventBuffer) }}

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
	Drop  bool               // an event the client did not ask for: read (its count kept), not forwarded
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
// before answering leaves the call free to be retried; events the client
// did not ask for (Step.Drop) are not passed on. A stream that ends
// without its last event is a malformed answer.
func Forward(c Classifier, body io.Reader, parse func(RawEvent) Step, emit func(domain.NativeEvent) error) (*domain.Usage, string, error) {
	r := eventReaders.Get().(*bufio.Reader)
	r.Reset(body)
	defer func() {
		r.Reset(nil) // not to keep the body reachable from the pool
		eventReaders.Put(r)
	}()
	events := &RawEvents{r: r}
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
		if step.Drop {
			continue
		}
		out.Raw = ev.Raw
		if step.Data != nil && !bytes.Equal(step.Data, ev.Data) {
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
