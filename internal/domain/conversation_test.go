package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func validConversation() domain.ChatRequest {
	return domain.ChatRequest{
		Model:     "m",
		MaxTokens: 1000,
		Tools: []domain.Tool{{Name: "get_weather", Description: "weather",
			Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}},
		Messages: []domain.Message{
			{Role: domain.RoleUser, Blocks: []domain.Block{
				domain.TextBlock("what is the weather?"),
				{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}},
				{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/a.png"}},
			}},
			{Role: domain.RoleAssistant, Blocks: []domain.Block{
				{Type: domain.BlockReasoning, Text: "the user wants weather", Reasoning: domain.Reasoning{Signature: "sig"}},
				{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			}},
			{Role: domain.RoleUser, Blocks: []domain.Block{
				{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: "call_1", Content: []domain.Block{domain.TextBlock("sunny")}}},
			}},
		},
		ToolChoice:     domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "get_weather"},
		ResponseFormat: domain.ResponseFormat{Type: domain.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)},
		Thinking:       domain.Thinking{Enabled: true, BudgetTokens: 500},
	}
}

func TestConversationValidates(t *testing.T) {
	if err := validConversation().Validate(); err != nil {
		t.Fatalf("Validate() = %v; want nil", err)
	}
}

func TestConversationRejectsEachFaultByParameter(t *testing.T) {
	cases := []struct {
		name   string
		change func(*domain.ChatRequest)
		param  string
	}{
		{"duplicate tool", func(r *domain.ChatRequest) { r.Tools = append(r.Tools, r.Tools[0]) }, "tools[1].name"},
		{"tool without name", func(r *domain.ChatRequest) { r.Tools[0].Name = "" }, "tools[0].name"},
		{"schema not an object", func(r *domain.ChatRequest) { r.Tools[0].Parameters = json.RawMessage(`[1]`) }, "tools[0].parameters"},
		{"choice names unknown tool", func(r *domain.ChatRequest) { r.ToolChoice.Name = "nope" }, "tool_choice"},
		{"required without tools", func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = nil, domain.ToolChoice{Mode: domain.ToolChoiceRequired}
			r.Messages = r.Messages[:1]
		}, "tool_choice"},
		{"schema format without schema", func(r *domain.ChatRequest) { r.ResponseFormat.Schema = nil }, "response_format"},
		{"tool call from user", func(r *domain.ChatRequest) { r.Messages[0].Blocks = r.Messages[1].Blocks[1:] }, "messages[0].content[0]"},
		{"tool call arguments not an object", func(r *domain.ChatRequest) { r.Messages[1].Blocks[1].ToolCall.Arguments = `"x"` }, "messages[1].content[1]"},
		{"tool result without call id", func(r *domain.ChatRequest) { r.Messages[2].Blocks[0].ToolResult.CallID = "" }, "messages[2].content[0]"},
		{"image without source", func(r *domain.ChatRequest) { r.Messages[0].Blocks[1].Image = domain.Image{} }, "messages[0].content[1]"},
		{"image of unknown type", func(r *domain.ChatRequest) { r.Messages[0].Blocks[1].Image.MediaType = "image/tiff" }, "messages[0].content[1]"},
		{"image URL not http", func(r *domain.ChatRequest) { r.Messages[0].Blocks[2].Image.URL = "file:///etc/passwd" }, "messages[0].content[2]"},
		{"image data not base64", func(r *domain.ChatRequest) { r.Messages[0].Blocks[1].Image.Data = "iVBOR%%%" }, "messages[0].content[1]"},
		{"image data cut short", func(r *domain.ChatRequest) { r.Messages[0].Blocks[1].Image.Data = "iVBORw0KGgo" }, "messages[0].content[1]"},
		{"image data URL-safe base64", func(r *domain.ChatRequest) { r.Messages[0].Blocks[1].Image.Data = "iVBO_w0KGgo=" }, "messages[0].content[1]"},
		{"reasoning from user", func(r *domain.ChatRequest) { r.Messages[0].Blocks = r.Messages[1].Blocks[:1] }, "messages[0].content[0]"},
		{"unknown block", func(r *domain.ChatRequest) { r.Messages[0].Blocks[0].Type = "video" }, "messages[0].content[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validConversation()
			c.change(&r)
			err := r.Validate()
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != c.param {
				t.Fatalf("Validate() = %#v; want an invalid error for %s", err, c.param)
			}
		})
	}
}

func TestPromptBytesCountsEveryPart(t *testing.T) {
	r := validConversation()
	got := r.PromptBytes()
	// Tools, the schema, the inline image's bytes and the URL image's allowance all count.
	if got < domain.ImageURLTokens+len(r.Tools[0].Parameters)+len("iVBORw0KGgo=")+len("what is the weather?") {
		t.Errorf("PromptBytes() = %d; it misses part of the prompt", got)
	}
	text := domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Content: strings.Repeat("x", 10)}}}
	if text.PromptBytes() != 10 {
		t.Errorf("PromptBytes() of a text message = %d; want 10", text.PromptBytes())
	}
}

func TestFeatureNamesWhatATextProviderCannotDo(t *testing.T) {
	if f := (domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}}).Feature(); f != "" {
		t.Errorf("Feature() of a text request = %q; want none", f)
	}
	r := validConversation()
	if f := r.Feature(); f != "tools" {
		t.Errorf("Feature() = %q; want tools", f)
	}
	r.Tools, r.ToolChoice, r.ResponseFormat, r.Thinking = nil, domain.ToolChoice{}, domain.ResponseFormat{}, domain.Thinking{}
	if f := r.Feature(); f != "images" {
		t.Errorf("Feature() = %q; want images", f)
	}
}

func TestPartsAndJoinText(t *testing.T) {
	m := domain.Message{Content: "hello"}
	if p := m.Parts(); len(p) != 1 || p[0].Text != "hello" {
		t.Errorf("Parts() = %+v", p)
	}
	if p := (domain.Message{}).Parts(); p != nil {
		t.Errorf("Parts() of an empty message = %+v; want none", p)
	}
	blocks := []domain.Block{domain.TextBlock("a"), {Type: domain.BlockImage}, domain.TextBlock("b")}
	if got := domain.JoinText(blocks); got != "a\nb" {
		t.Errorf("JoinText = %q", got)
	}
}

// TestAnImageIsEstimatedAsAnImage: count_tokens and the providers that
// report no usage estimate an inline image at about what providers charge
// for one, not at a token per four bytes of its base64, and never above the
// reservation's bound.
func TestAnImageIsEstimatedAsAnImage(t *testing.T) {
	withImage := func(data string, inToolResult bool) domain.ChatRequest {
		img := domain.Block{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: data}}
		if inToolResult {
			img = domain.Block{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: "c", Content: []domain.Block{img}}}
		}
		return domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Blocks: []domain.Block{domain.TextBlock("what is this?"), img}}}}
	}
	text := domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Blocks: []domain.Block{domain.TextBlock("what is this?")}}}}.EstimatePromptTokens()
	for _, inToolResult := range []bool{false, true} {
		large := withImage(strings.Repeat("A", 400_000), inToolResult) // a 300 KB image
		if got := large.EstimatePromptTokens(); got != text+1600 {
			t.Errorf("a 300 KB image (in a tool result: %v) is estimated at %d tokens with its text, want %d", inToolResult, got, text+1600)
		}
		tiny := withImage("iVBORw0KGgo=", inToolResult)
		if got, bound := tiny.EstimatePromptTokens(), domain.WorstCaseChat(tiny, 0).PromptTokens; got != text+len("iVBORw0KGgo=") || got > bound {
			t.Errorf("a 12-byte image: estimate %d, want %d, within the bound %d", got, text+12, bound)
		}
	}
}

// TestAnImageAsAURL: an image is one URL, which ImageOfURL reads back as
// the same image; a data URL of another form, or without data, is refused
// by the name of the field that holds it.
func TestAnImageAsAURL(t *testing.T) {
	for _, tc := range []struct {
		img  domain.Image
		want string
	}{
		{domain.Image{URL: "https://example.com/a.png"}, "https://example.com/a.png"},
		{domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}, "data:image/png;base64,iVBORw0KGgo="},
	} {
		if got := tc.img.AsURL(); got != tc.want {
			t.Errorf("%+v.AsURL() = %q; want %q", tc.img, got, tc.want)
		}
		if back, err := domain.ImageOfURL("image_url", tc.want); err != nil || back != tc.img {
			t.Errorf("ImageOfURL(%q) = %+v, %v; want %+v", tc.want, back, err, tc.img)
		}
	}
	for _, url := range []string{"data:image/png,iVBORw0KGgo=", "data:image/png;base64,", "data:"} {
		_, err := domain.ImageOfURL("input[0].content[1].image_url", url)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "input[0].content[1].image_url" {
			t.Errorf("ImageOfURL(%q) = %v; want it invalid, naming input[0].content[1].image_url", url, err)
		}
	}
}
