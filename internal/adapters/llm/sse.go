package llm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventBytes bounds one server-sent event, and one line of one.
const MaxEventBytes = 1 << 20

// Events reads the data of server-sent events (the text/event-stream
// format): the data lines of an event, joined by newlines; comments and the
// other fields are skipped.
type Events struct {
	r *bufio.Reader
}

// NewEvents returns an Events reading body.
func NewEvents(body io.Reader) *Events {
	return &Events{r: bufio.NewReaderSize(body, 16<<10)}
}

// Next returns the data of the next event with data, or io.EOF at the end
// of the body. An event cut off by the end of the body is returned as it
// is, so that a broken stream shows as an unreadable event. An event or a
// line longer than MaxEventBytes is an error.
func (e *Events) Next() ([]byte, error) {
	var data []byte
	have := false
	for {
		line, err := e.line()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		eof := err != nil
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0 && have && !eof:
			return data, nil // a blank line ends the event
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if have {
				data = append(data, '\n')
			}
			if len(data)+len(v) > MaxEventBytes {
				return nil, fmt.Errorf("a stream event exceeds %d bytes", MaxEventBytes)
			}
			data, have = append(data, v...), true
		}
		if eof {
			if have {
				return data, nil
			}
			return nil, io.EOF
		}
	}
}

// line returns the next line, or what is left before the end of the body
// with io.EOF; a line longer than MaxEventBytes is an error.
func (e *Events) line() ([]byte, error) { return readLine(e.r) }

// readLine returns the next line of r, or what is left before the end with
// io.EOF; a line longer than MaxEventBytes is an error.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(long) > MaxEventBytes {
			return nil, fmt.Errorf("a stream event exceeds %d bytes", MaxEventBytes)
		}
		line, err = r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}
