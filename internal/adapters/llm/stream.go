package llm

import (
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// Stream passes the text of a streamed chat completion on to the gateway's
// emit function as it arrives, and assembles the complete response.
type Stream struct {
	emit    func(domain.ChatChunk) error
	content strings.Builder
}

// NewStream returns a Stream that emits through emit.
func NewStream(emit func(domain.ChatChunk) error) *Stream {
	return &Stream{emit: emit}
}

// Text emits a chunk with delta, unless delta is empty, and appends it to
// the content. It returns emit's error, which must end the stream.
func (s *Stream) Text(delta string) error {
	if delta == "" {
		return nil
	}
	s.content.WriteString(delta)
	return s.emit(domain.ChatChunk{Delta: delta})
}

// Finish emits the final chunk, carrying resp's finish reason and usage,
// and returns resp with the assembled content.
func (s *Stream) Finish(resp domain.ChatResponse) (domain.ChatResponse, error) {
	resp.Content = s.content.String()
	usage := resp.Usage
	if err := s.emit(domain.ChatChunk{FinishReason: resp.FinishReason, Usage: &usage}); err != nil {
		return domain.ChatResponse{}, err
	}
	return resp, nil
}

// Content returns the text emitted so far.
func (s *Stream) Content() string { return s.content.String() }
