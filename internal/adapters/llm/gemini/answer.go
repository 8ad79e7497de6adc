package gemini

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// answer assembles a response from the API's parts, a whole answer's or a
// stream's as they arrive, and passes each piece on to emit (nil for an
// answer that is not streamed). Consecutive text parts make one text
// block, consecutive thoughts one reasoning block; each function call is a
// tool call block. A thought signature on a part that is not a thought
// becomes a reasoning block of its own, with no text, just before that
// part's block, which is where translate finds it again.
type answer struct {
	emit   func(domain.ChatChunk) error
	blocks []domain.Block
	text   strings.Builder
	calls  bool
	out    domain.ChatResponse
	usage  *usageMetadata
	// stopped is the error emit returned, which ends the stream as it is.
	stopped error
}

func newAnswer(model string, emit func(domain.ChatChunk) error) *answer {
	a := &answer{out: domain.ChatResponse{Model: model, Created: time.Now()}}
	a.emit = func(c domain.ChatChunk) error {
		if emit == nil {
			return nil
		}
		a.stopped = emit(c)
		return a.stopped
	}
	return a
}

// add takes one response (or stream event): its first candidate's parts,
// its finish reason, its usage (the last one reported counts) and ids.
func (a *answer) add(r response) error {
	if r.ResponseID != "" && a.out.ID == "" {
		a.out.ID = r.ResponseID
	}
	if r.ModelVersion != "" {
		a.out.Model = r.ModelVersion
	}
	if r.UsageMetadata != nil {
		a.usage = r.UsageMetadata
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			a.out.FinishReason = domain.FinishContentFilter // the prompt was blocked
		}
		return nil
	}
	c := r.Candidates[0] // tidygate asks for one candidate
	for _, pt := range c.Content.Parts {
		if err := a.part(pt); err != nil {
			return err
		}
	}
	if c.FinishReason != "" {
		a.out.FinishReason = finishReason(c.FinishReason, a.calls)
	}
	return nil
}

func (a *answer) part(pt part) error {
	switch {
	case pt.Thought:
		if err := a.open(domain.BlockReasoning, domain.Block{Type: domain.BlockReasoning}); err != nil {
			return err
		}
		i := len(a.blocks) - 1
		a.blocks[i].Text += pt.Text
		if pt.Text != "" {
			if err := a.emit(domain.ChatChunk{Index: i, ReasoningDelta: pt.Text}); err != nil {
				return err
			}
		}
		return a.sign(pt.ThoughtSignature)
	case pt.ThoughtSignature != "":
		if err := a.openNew(domain.Block{Type: domain.BlockReasoning}); err != nil {
			return err
		}
		if err := a.sign(pt.ThoughtSignature); err != nil {
			return err
		}
		pt.ThoughtSignature = ""
		return a.part(pt)
	case pt.FunctionCall != nil:
		call := domain.ToolCall{ID: pt.FunctionCall.ID, Name: pt.FunctionCall.Name, Arguments: string(pt.FunctionCall.Args)}
		if call.Name == "" {
			return errors.New("a function call without a name")
		}
		if call.ID == "" {
			call.ID = newCallID()
		}
		if call.Arguments == "" || call.Arguments == "null" {
			call.Arguments = "{}"
		}
		a.calls = true
		start := domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: call.ID, Name: call.Name}}
		if err := a.openNew(start); err != nil {
			return err
		}
		i := len(a.blocks) - 1
		a.blocks[i].ToolCall = call
		return a.emit(domain.ChatChunk{Index: i, ArgumentsDelta: call.Arguments})
	case pt.Text != "":
		if err := a.open(domain.BlockText, domain.TextBlock("")); err != nil {
			return err
		}
		i := len(a.blocks) - 1
		a.blocks[i].Text += pt.Text
		a.text.WriteString(pt.Text)
		return a.emit(domain.ChatChunk{Index: i, Delta: pt.Text})
	}
	return nil // an empty part, or one tidygate does not read (executable code, …)
}

// open continues the last block when it is of type t, or starts start.
func (a *answer) open(t domain.BlockType, start domain.Block) error {
	if n := len(a.blocks); n > 0 && a.blocks[n-1].Type == t && (t != domain.BlockReasoning || a.blocks[n-1].Reasoning.Signature == "") {
		return nil
	}
	return a.openNew(start)
}

// openNew starts a block. A text block's start is not emitted: a chunk of
// a block that was not started is text.
func (a *answer) openNew(start domain.Block) error {
	a.blocks = append(a.blocks, start)
	if start.Type == domain.BlockText {
		return nil
	}
	return a.emit(domain.ChatChunk{Index: len(a.blocks) - 1, Start: &start})
}

// sign sets the signature of the open reasoning block.
func (a *answer) sign(signature string) error {
	if signature == "" {
		return nil
	}
	i := len(a.blocks) - 1
	a.blocks[i].Reasoning.Signature = signature
	return a.emit(domain.ChatChunk{Index: i, Signature: signature})
}

// finish completes the response: its content, its blocks when it holds
// more than text, and its usage (estimated when the API reported none).
func (a *answer) finish(req domain.ChatRequest) (domain.ChatResponse, error) {
	out := a.out
	if out.FinishReason == "" {
		return domain.ChatResponse{}, errors.New("the answer has no finish reason")
	}
	out.Content = a.text.String()
	for _, b := range a.blocks {
		if b.Type != domain.BlockText {
			out.Blocks = a.blocks
			break
		}
	}
	switch {
	case a.usage == nil:
		out.Usage = llm.EstimateUsage(req, out.Content)
	case a.usage.negative():
		return domain.ChatResponse{}, fmt.Errorf("negative token counts %+v", *a.usage)
	default:
		out.Usage = a.usage.usage()
	}
	return out, nil
}

// newCallID makes up an id for a function call the API returned without one.
func newCallID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails
	return callIDPrefix + hex.EncodeToString(b)
}
