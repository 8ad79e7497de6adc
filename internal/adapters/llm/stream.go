package llm

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// Stream passes the pieces of a streamed chat completion on to the
// gateway's emit function as they arrive, and assembles the complete
// response.
//
// Text alone needs only Text. An answer of several content blocks (text,
// tool calls, reasoning) is passed on with the indexed methods (Start,
// TextAt, ArgumentsAt, ReasoningAt, SignatureAt, RedactedAt), which keep
// each block under the provider's index for it: a block's first piece
// starts it, and a piece that does not fit its block's type is a malformed
// stream.
type Stream struct {
	emit    func(domain.ChatChunk) error
	content strings.Builder
	blocks  map[int]*domain.Block
	rich    bool // some block is not text
}

// NewStream returns a Stream that emits through emit.
func NewStream(emit func(domain.ChatChunk) error) *Stream {
	return &Stream{emit: emit}
}

// MismatchError is a streamed piece that does not fit the content block it
// names: a provider's malformed stream.
type MismatchError struct {
	Index int
	Piece string
	Block domain.BlockType
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("a %s for content block %d, which is a %s block", e.Piece, e.Index, e.Block)
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

// Start begins content block index as b and emits its start, except for a
// text block, whose first delta starts it. Starting an index twice is a
// *MismatchError.
func (s *Stream) Start(index int, b domain.Block) error {
	if old, ok := s.blocks[index]; ok {
		return &MismatchError{Index: index, Piece: "second start", Block: old.Type}
	}
	if s.blocks == nil {
		s.blocks = map[int]*domain.Block{}
	}
	s.blocks[index] = &b
	if b.Type == domain.BlockText {
		return nil
	}
	s.rich = true
	start := b
	return s.emit(domain.ChatChunk{Index: index, Start: &start})
}

// block returns block index, starting it as typ when it was not started,
// or a *MismatchError when it is of another type.
func (s *Stream) block(index int, typ domain.BlockType, piece string) (*domain.Block, error) {
	b, ok := s.blocks[index]
	if !ok {
		if err := s.Start(index, domain.Block{Type: typ}); err != nil {
			return nil, err
		}
		return s.blocks[index], nil
	}
	if b.Type != typ {
		return nil, &MismatchError{Index: index, Piece: piece, Block: b.Type}
	}
	return b, nil
}

// TextAt appends delta to text block index and emits it.
func (s *Stream) TextAt(index int, delta string) error {
	if delta == "" {
		return nil
	}
	b, err := s.block(index, domain.BlockText, "text delta")
	if err != nil {
		return err
	}
	b.Text += delta
	s.content.WriteString(delta)
	return s.emit(domain.ChatChunk{Index: index, Delta: delta})
}

// ArgumentsAt appends delta to the arguments of tool call block index and
// emits it.
func (s *Stream) ArgumentsAt(index int, delta string) error {
	if delta == "" {
		return nil
	}
	b, ok := s.blocks[index]
	if !ok || b.Type != domain.BlockToolCall {
		typ := domain.BlockType("missing")
		if ok {
			typ = b.Type
		}
		return &MismatchError{Index: index, Piece: "tool call arguments delta", Block: typ}
	}
	b.ToolCall.Arguments += delta
	return s.emit(domain.ChatChunk{Index: index, ArgumentsDelta: delta})
}

// ReasoningAt appends delta to reasoning block index and emits it.
func (s *Stream) ReasoningAt(index int, delta string) error {
	if delta == "" {
		return nil
	}
	b, err := s.block(index, domain.BlockReasoning, "reasoning delta")
	if err != nil {
		return err
	}
	b.Text += delta
	return s.emit(domain.ChatChunk{Index: index, ReasoningDelta: delta})
}

// SignatureAt appends sig to the signature of reasoning block index and
// emits it.
func (s *Stream) SignatureAt(index int, sig string) error {
	if sig == "" {
		return nil
	}
	b, err := s.block(index, domain.BlockReasoning, "signature")
	if err != nil {
		return err
	}
	b.Reasoning.Signature += sig
	return s.emit(domain.ChatChunk{Index: index, Signature: sig})
}

// RedactedAt records data, a piece of reasoning the provider encrypted, as
// the base64 Encrypted content of reasoning block index. A block that
// starts this way is started with it; a later piece is kept in the
// assembled response only, as no chunk carries encrypted content.
func (s *Stream) RedactedAt(index int, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	enc := base64.StdEncoding.EncodeToString(data)
	if _, ok := s.blocks[index]; !ok {
		return s.Start(index, domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: enc}})
	}
	b, err := s.block(index, domain.BlockReasoning, "redacted reasoning")
	if err != nil {
		return err
	}
	b.Reasoning.Encrypted += enc
	return nil
}

// Finish emits the final chunk, carrying resp's finish reason, stop
// sequence and usage, and returns resp with the assembled content and,
// when the answer holds more than text, its blocks in index order.
func (s *Stream) Finish(resp domain.ChatResponse) (domain.ChatResponse, error) {
	resp.Content = s.content.String()
	if s.rich {
		resp.Blocks = s.assembled()
	}
	usage := resp.Usage
	if err := s.emit(domain.ChatChunk{FinishReason: resp.FinishReason, StopSequence: resp.StopSequence, Usage: &usage}); err != nil {
		return domain.ChatResponse{}, err
	}
	return resp, nil
}

// assembled returns the started blocks in index order, without empty text
// blocks; a tool call that got no arguments has the empty object.
func (s *Stream) assembled() []domain.Block {
	order := make([]int, 0, len(s.blocks))
	for i := range s.blocks {
		order = append(order, i)
	}
	sort.Ints(order)
	out := make([]domain.Block, 0, len(order))
	for _, i := range order {
		b := *s.blocks[i]
		switch {
		case b.Type == domain.BlockText && b.Text == "":
			continue
		case b.Type == domain.BlockToolCall:
			b.ToolCall.Arguments = domain.ToolArguments(b.ToolCall.Arguments)
		}
		out = append(out, b)
	}
	return out
}

// Content returns the text emitted so far.
func (s *Stream) Content() string { return s.content.String() }

// Answer returns an answer's text, its text blocks concatenated, and its
// blocks when it holds more than text (nil for text alone, which Content
// says); empty text blocks are left out.
func Answer(blocks []domain.Block) (content string, rich []domain.Block) {
	var text strings.Builder
	hasMore := false
	for _, b := range blocks {
		if b.Type == domain.BlockText {
			text.WriteString(b.Text)
		} else {
			hasMore = true
		}
	}
	if !hasMore {
		return text.String(), nil
	}
	for _, b := range blocks {
		if b.Type != domain.BlockText || b.Text != "" {
			rich = append(rich, b)
		}
	}
	return text.String(), rich
}
