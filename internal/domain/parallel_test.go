package domain_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestFirstToolCallOnly(t *testing.T) {
	call := func(id string) domain.Block {
		return domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: id}}
	}
	one := []domain.Block{domain.TextBlock("x"), call("a")}
	if got := domain.FirstToolCallOnly(one); len(got) != 2 {
		t.Errorf("one call: %+v", got)
	}
	got := domain.FirstToolCallOnly([]domain.Block{call("a"), domain.TextBlock("x"), call("b"), call("c")})
	if len(got) != 2 || got[0].ToolCall.ID != "a" || got[1].Text != "x" {
		t.Errorf("three calls: %+v", got)
	}
}

func TestOneToolCallKeepsTheFirstCallsChunks(t *testing.T) {
	var f domain.OneToolCall
	start := func(id string) *domain.Block {
		return &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: id}}
	}
	u := domain.Usage{CompletionTokens: 3}
	cases := []struct {
		in        domain.ChatChunk
		keep      bool
		wantDelta string
	}{
		{domain.ChatChunk{Index: 0, Delta: "hi"}, true, ""},
		{domain.ChatChunk{Index: 1, Start: start("a")}, true, ""},
		{domain.ChatChunk{Index: 1, ArgumentsDelta: "{}"}, true, "{}"},
		{domain.ChatChunk{Index: 2, Start: start("b")}, false, ""},
		{domain.ChatChunk{Index: 2, ArgumentsDelta: "{}"}, false, ""},
		{domain.ChatChunk{Index: 2, ArgumentsDelta: "{}", FinishReason: "tool_calls", Usage: &u}, true, ""},
	}
	for i, c := range cases {
		got, keep := f.Keep(c.in)
		if keep != c.keep || got.ArgumentsDelta != c.wantDelta || (c.in.Usage != nil && got.Usage != c.in.Usage) {
			t.Errorf("chunk %d: kept %v as %+v", i, keep, got)
		}
	}
}
