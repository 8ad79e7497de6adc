package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// openAIClient returns an OpenAI SDK client, without retries, for the stack.
func (s *agentStack) openAIClient() openai.Client {
	return openai.NewClient(option.WithBaseURL(s.url+"/v1/"), option.WithAPIKey(agentKey),
		option.WithHeader("X-Audit-Reason", "chat tools test"), option.WithMaxRetries(0))
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("The weather in a city."),
	Parameters: shared.FunctionParameters{"type": "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
})

// TestOpenAIToolLoop runs a whole tool loop through the chat completions
// dialect with the official SDK: the model calls a tool, the client sends
// the result back in a tool message, and the model answers from it.
func TestOpenAIToolLoop(t *testing.T) {
	s := newAgentStack(t)
	client := s.openAIClient()
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "mock-chat", MaxTokens: openai.Int(200),
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(`What is the weather? [[tool:get_weather {"city":"Oslo"}]]`)}}
	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	choice := resp.Choices[0]
	if choice.FinishReason != "tool_calls" || len(choice.Message.ToolCalls) != 1 || !choice.Message.JSON.Content.Valid() && choice.Message.Content != "" {
		t.Fatalf("first answer = %s", resp.RawJSON())
	}
	call := choice.Message.ToolCalls[0]
	if call.ID == "" || call.Type != "function" || call.Function.Name != "get_weather" || call.Function.Arguments != `{"city":"Oslo"}` {
		t.Fatalf("tool call = %s", call.RawJSON())
	}
	params.Messages = append(params.Messages, choice.Message.ToParam(), openai.ToolMessage("sunny, 21 degrees", call.ID))
	resp, err = client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	choice = resp.Choices[0]
	if choice.FinishReason != "stop" || len(choice.Message.ToolCalls) != 0 || choice.Message.Content != "Tool result: sunny, 21 degrees" {
		t.Errorf("second answer = %s", resp.RawJSON())
	}
}

// TestOpenAIToolCallStream checks the streamed form of a tool call: the
// first delta names the call, the next ones carry its arguments, and the
// SDK's accumulator puts them together.
func TestOpenAIToolCallStream(t *testing.T) {
	s := newAgentStack(t)
	client := s.openAIClient()
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "mock-chat", MaxTokens: openai.Int(200), ParallelToolCalls: openai.Bool(false),
		Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
			Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}}},
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather, please.")}})
	var acc openai.ChatCompletionAccumulator
	var toolDeltas []openai.ChatCompletionChunkChoiceDeltaToolCall
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		if len(c.Choices) > 0 {
			toolDeltas = append(toolDeltas, c.Choices[0].Delta.ToolCalls...)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(toolDeltas) < 2 || toolDeltas[0].ID == "" || toolDeltas[0].Type != "function" || toolDeltas[0].Function.Name != "get_weather" {
		t.Fatalf("tool call deltas = %+v", toolDeltas)
	}
	for _, d := range toolDeltas[1:] {
		if d.Index != 0 || d.ID != "" || d.Function.Arguments == "" {
			t.Errorf("later delta = %s", d.RawJSON())
		}
	}
	msg := acc.Choices[0].Message
	if acc.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].ID != toolDeltas[0].ID {
		t.Fatalf("accumulated %+v", acc.Choices)
	}
	var args struct{ City *string }
	if err := json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args); err != nil || args.City == nil {
		t.Errorf("arguments %q: %v", msg.ToolCalls[0].Function.Arguments, err)
	}
}

// TestOpenAIImagePart sends images inline and by URL, and text beside them.
func TestOpenAIImagePart(t *testing.T) {
	s := newAgentStack(t)
	client := s.openAIClient()
	png := "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nfake"))
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "mock-chat", MaxTokens: openai.Int(50),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("[[say:two images]]"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: png}),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/cat.jpg", Detail: "low"}),
		})}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "two images" {
		t.Errorf("answer = %s", resp.RawJSON())
	}
}

// TestOpenAIJSONSchema asks for an answer that follows a JSON Schema.
func TestOpenAIJSONSchema(t *testing.T) {
	s := newAgentStack(t)
	client := s.openAIClient()
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "mock-chat", MaxTokens: openai.Int(200),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "city", Strict: openai.Bool(true), Schema: map[string]any{
				"type": "object", "required": []string{"name", "population"}, "additionalProperties": false,
				"properties": map[string]any{"name": map[string]any{"type": "string"}, "population": map[string]any{"type": "integer", "minimum": 1}}}}}},
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Name a city.")}})
	if err != nil {
		t.Fatal(err)
	}
	var city struct {
		Name       *string
		Population *int
	}
	dec := json.NewDecoder(strings.NewReader(resp.Choices[0].Message.Content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&city); err != nil || city.Name == nil || city.Population == nil || *city.Population < 1 {
		t.Errorf("answer %q does not follow the schema: %v", resp.Choices[0].Message.Content, err)
	}
}

// TestOpenAIToolsBadInput checks that bad tool input gets an OpenAI 400
// naming the parameter.
func TestOpenAIToolsBadInput(t *testing.T) {
	s := newAgentStack(t)
	client := s.openAIClient()
	cases := map[string]struct {
		params openai.ChatCompletionNewParams
		param  string
	}{
		"tool choice names no tool": {openai.ChatCompletionNewParams{Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
			ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
				Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_time"}}}}, "tool_choice"},
		"tool result without its call": {openai.ChatCompletionNewParams{Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage("hi"), openai.ToolMessage("42", "")}}, "messages[1].tool_call_id"},
		"image of unknown type": {openai.ChatCompletionNewParams{Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(
			[]openai.ChatCompletionContentPartUnionParam{openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/bmp;base64,Qk0="})})}},
			"messages[0].content[0]"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.params.Model = "mock-chat"
			if c.params.Messages == nil {
				c.params.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}
			}
			_, err := client.Chat.Completions.New(context.Background(), c.params)
			var e *openai.Error
			if !errors.As(err, &e) || e.StatusCode != 400 || e.Param != c.param || e.Type != "invalid_request_error" {
				t.Errorf("error = %v", err)
			}
		})
	}
}
