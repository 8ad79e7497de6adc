package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// agentAnswer is a small agent model: with a tool result in the last
// message it reports the result; with tools it calls the first one; else
// it greets.
func agentAnswer(req domain.ChatRequest) domain.ChatResponse {
	last := req.Messages[len(req.Messages)-1]
	for _, b := range last.Blocks {
		if b.Type == domain.BlockToolResult {
			text := "result: " + domain.JoinText(b.ToolResult.Content)
			return domain.ChatResponse{Content: text, FinishReason: domain.FinishStop, Usage: domain.Usage{PromptTokens: 9, CompletionTokens: 3}}
		}
	}
	if len(req.Tools) > 0 {
		return domain.ChatResponse{FinishReason: domain.FinishToolCalls, Usage: domain.Usage{PromptTokens: 8, CompletionTokens: 4},
			Blocks: []domain.Block{{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: req.Tools[0].Name, Arguments: `{"city":"Oslo"}`}}}}
	}
	return domain.ChatResponse{Content: "Hello there", FinishReason: domain.FinishStop, Usage: domain.Usage{PromptTokens: 7, CompletionTokens: 2}}
}

// agentGateway answers with agentAnswer, as a whole or streamed block by block.
func agentGateway() *fakeGateway {
	return &fakeGateway{
		chat: func(_ context.Context, req domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{Result: okResult, Response: agentAnswer(req)}, nil
		},
		stream: func(_ context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
			resp := agentAnswer(req)
			for i, b := range resp.Parts() {
				var err error
				switch b.Type {
				case domain.BlockToolCall:
					start := b
					start.ToolCall.Arguments = ""
					if err = emit(domain.ChatChunk{Index: i, Start: &start}); err == nil {
						err = emit(domain.ChatChunk{Index: i, ArgumentsDelta: b.ToolCall.Arguments})
					}
				default:
					if err = emit(domain.ChatChunk{Index: i, Delta: b.Text[:5]}); err == nil {
						err = emit(domain.ChatChunk{Index: i, Delta: b.Text[5:]})
					}
				}
				if err != nil {
					return gateway.ChatResult{}, err
				}
			}
			return gateway.ChatResult{Result: okResult, Response: resp}, nil
		},
	}
}

var weatherTool = responses.ToolParamOfFunction("get_weather",
	map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}, false)

// TestResponsesWithTheOfficialSDK drives POST /v1/responses with the
// official OpenAI Go SDK's Responses client: a plain answer, a stream, and
// a function tool loop, as JSON and streamed.
func TestResponsesWithTheOfficialSDK(t *testing.T) {
	gw := agentGateway()
	client := sdkClient(t, gw)
	ctx := context.Background()

	t.Run("json", func(t *testing.T) {
		resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "mock-chat",
			Instructions: openai.String("Be brief."), Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
			MaxOutputTokens: openai.Int(50)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Object != "response" || resp.Status != "completed" || resp.OutputText() != "Hello there" || resp.Model != "mock-chat" ||
			resp.Usage.InputTokens != 7 || resp.Usage.OutputTokens != 2 || resp.Usage.TotalTokens != 9 || !strings.HasPrefix(resp.ID, "resp_") {
			t.Errorf("response = %s", resp.RawJSON())
		}
		got := gw.chats[len(gw.chats)-1]
		if got.MaxTokens != 50 || len(got.Messages) != 2 || got.Messages[0].Role != domain.RoleSystem || got.Messages[0].Content != "Be brief." ||
			got.Messages[1].Content != "Hi" {
			t.Errorf("request = %+v", got)
		}
		if call := gw.lastCall(t); call.AuditReason != "sdk test" {
			t.Errorf("call = %+v", call)
		}
	})

	t.Run("stream", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "mock-chat",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")}})
		var types []string
		var text string
		var done responses.Response
		for n := 0; stream.Next(); n++ {
			ev := stream.Current()
			if ev.SequenceNumber != int64(n) {
				t.Errorf("event %d has sequence_number %d", n, ev.SequenceNumber)
			}
			types = append(types, ev.Type)
			if ev.Type == "response.output_item.added" && !strings.Contains(ev.RawJSON(), `"content":[]`) {
				t.Errorf("a message item must be added with its (empty) content: %s", ev.RawJSON())
			}
			if ev.Type == "response.output_text.delta" {
				text += ev.Delta
			}
			if ev.Type == "response.completed" {
				done = ev.Response
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		want := "response.created response.in_progress response.output_item.added response.content_part.added " +
			"response.output_text.delta response.output_text.delta response.output_text.done response.content_part.done " +
			"response.output_item.done response.completed"
		if strings.Join(types, " ") != want {
			t.Errorf("events = %v", types)
		}
		if text != "Hello there" || done.OutputText() != "Hello there" || done.Usage.TotalTokens != 9 || done.Status != "completed" {
			t.Errorf("text %q, response %s", text, done.RawJSON())
		}
	})

	for _, streamed := range []bool{false, true} {
		name := "tool loop"
		if streamed {
			name += " streamed"
		}
		t.Run(name, func(t *testing.T) {
			params := responses.ResponseNewParams{Model: "mock-chat", Tools: []responses.ToolUnionParam{weatherTool},
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage("Weather in Oslo?", responses.EasyInputMessageRoleUser)}}}
			first := respond(t, client, params, streamed)
			if len(first.Output) != 1 || first.Output[0].Type != "function_call" || first.Output[0].Name != "get_weather" ||
				first.Output[0].CallID != "call_1" || first.Output[0].Arguments.OfString != `{"city":"Oslo"}` {
				t.Fatalf("first response = %s", first.RawJSON())
			}
			call := first.Output[0]
			output := responses.ResponseInputItemParamOfFunctionCallOutput("sunny")
			output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			params.Input.OfInputItemList = append(params.Input.OfInputItemList,
				responses.ResponseInputItemParamOfFunctionCall(call.Arguments.OfString, call.CallID, call.Name), output)
			second := respond(t, client, params, streamed)
			if second.OutputText() != "result: sunny" {
				t.Errorf("second response = %s", second.RawJSON())
			}
			got := gw.chats[len(gw.chats)-1]
			if len(got.Messages) != 3 || got.Messages[1].Role != domain.RoleAssistant || got.Messages[1].Blocks[0].ToolCall.ID != "call_1" ||
				got.Messages[2].Blocks[0].ToolResult.CallID != "call_1" {
				t.Errorf("second request = %+v", got.Messages)
			}
		})
	}

	t.Run("bad input", func(t *testing.T) {
		var e *openai.Error
		_, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "mock-chat",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")}, PreviousResponseID: openai.String("resp_1")})
		if !errors.As(err, &e) || e.StatusCode != 400 || e.Param != "previous_response_id" || !strings.Contains(e.Message, "stores no responses") {
			t.Errorf("error = %v", err)
		}
	})
}

// respond sends params as one request, streamed or not, and returns the response.
func respond(t *testing.T, client openai.Client, params responses.ResponseNewParams, streamed bool) responses.Response {
	t.Helper()
	if !streamed {
		resp, err := client.Responses.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		return *resp
	}
	stream := client.Responses.NewStreaming(context.Background(), params)
	var done responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			done = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return done
}

func TestResponsesRefusesBadInputInOpenAIsShape(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	cases := []struct{ name, body, param string }{
		{"no input", `{"model":"mock-chat"}`, "input"},
		{"input a number", `{"model":"mock-chat","input":7}`, "input"},
		{"bad role", `{"model":"mock-chat","input":[{"role":"wizard","content":"x"}]}`, "input[0].role"},
		{"bad part", `{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_video","file_id":"f"}]}]}`, "input[0].content[0].type"},
		{"image of nothing", `{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_image"}]}]}`, "input[0].content[0].image_url"},
		{"image data URL not base64", `{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,abc"}]}]}`, "input[0].content[0].image_url"},
		{"image data URL without data", `{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,"}]}]}`, "input[0].content[0].image_url"},
		{"tool output's image data URL without data", `{"model":"mock-chat","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,"}]}]}`, "input[0].output[0].image_url"},
		{"bad tool choice", `{"model":"mock-chat","input":"x","tool_choice":"sometimes"}`, "tool_choice"},
		{"max_output_tokens 0", `{"model":"mock-chat","input":"x","max_output_tokens":0}`, "max_output_tokens"},
		{"previous response", `{"model":"mock-chat","input":"x","previous_response_id":"resp_1"}`, "previous_response_id"},
		{"background", `{"model":"mock-chat","input":"x","background":true}`, "background"},
		{"unknown reasoning effort", `{"model":"mock-chat","input":"x","reasoning":{"effort":"huge"}}`, "reasoning.effort"},
		{"wrong type", `{"model":"mock-chat","input":"x","stream":"yes"}`, "stream"},
		{"too many messages", `{"model":"mock-chat","input":[` + strings.Repeat(`{"role":"user","content":"x"},`, domain.MaxMessages) +
			`{"role":"user","content":"x"}]}`, "input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := r.do("POST", "/v1/responses", tc.body)
			e := errorOf(t, rec, http.StatusBadRequest)
			if str(e.Param) != tc.param || e.Type != "invalid_request_error" {
				t.Errorf("error = %s", rec.Body)
			}
		})
	}
	if r.gw.callCount() != 0 {
		t.Errorf("bad requests reached the gateway")
	}
}

func TestResponsesStreamFailureAfterStartIsResponseFailed(t *testing.T) {
	r := newRig(t, &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		_ = emit(domain.ChatChunk{Delta: "partial"})
		return gateway.ChatResult{}, &domain.Error{Kind: domain.KindUpstream, Message: "provider failed"}
	}}, httpapi.Options{})
	rec := r.do("POST", "/v1/responses", `{"model":"mock-chat","input":"x","stream":true}`)
	names, data := namedEvents(t, rec.Body.String())
	last := names[len(names)-1]
	resp, _ := data[len(data)-1]["response"].(map[string]any)
	if last != "response.failed" || resp["status"] != "failed" || !strings.Contains(rec.Body.String(), "provider failed") {
		t.Errorf("events %v: %s", names, rec.Body)
	}
}

// TestResponsesToolCallWithoutArguments streams a call that got no
// arguments (one empty piece, as Anthropic sends): every event that carries
// its arguments has the empty object, as the answer that is not streamed has.
// TestResponsesStreamOpensNoEmptyItem: the final chunk (finish reason and
// usage, index 0) after a function call opens no message item.
func TestResponsesStreamOpensNoEmptyItem(t *testing.T) {
	call := domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "now"}}
	r := newRig(t, &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		u := domain.Usage{PromptTokens: 9, CompletionTokens: 4}
		for _, c := range []domain.ChatChunk{{Index: 0, Delta: "Let me look."}, {Index: 1, Start: &call}, {Index: 1, ArgumentsDelta: `{}`},
			{FinishReason: domain.FinishToolCalls, Usage: &u}} {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: domain.FinishToolCalls, Usage: u,
			Blocks: []domain.Block{domain.TextBlock("Let me look."), call}}}, nil
	}}, httpapi.Options{})
	rec := r.do("POST", "/v1/responses", `{"model":"mock-chat","input":"x","stream":true}`)
	names, data := namedEvents(t, rec.Body.String())
	var items []string
	for i, name := range names {
		if name == "response.output_item.added" {
			items = append(items, data[i]["item"].(map[string]any)["type"].(string))
		}
	}
	if want := "message function_call"; strings.Join(items, " ") != want {
		t.Errorf("items added: %v, want %s: %s", items, want, rec.Body)
	}
}

func TestResponsesToolCallWithoutArguments(t *testing.T) {
	call := domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "now"}}
	r := newRig(t, &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		for _, c := range []domain.ChatChunk{{Start: &call}, {ArgumentsDelta: ""}} {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: domain.FinishToolCalls, Blocks: []domain.Block{call}}}, nil
	}}, httpapi.Options{})
	rec := r.do("POST", "/v1/responses", `{"model":"mock-chat","input":"x","stream":true}`)
	names, data := namedEvents(t, rec.Body.String())
	var got []string
	for i, name := range names {
		switch name {
		case "response.function_call_arguments.done":
			got = append(got, mustJSON(t, data[i]["arguments"]))
		case "response.output_item.done":
			got = append(got, mustJSON(t, data[i]["item"].(map[string]any)["arguments"]))
		case "response.completed":
			got = append(got, mustJSON(t, data[i]["response"].(map[string]any)["output"].([]any)[0].(map[string]any)["arguments"]))
		}
	}
	if want := `"{}" "{}" "{}"`; strings.Join(got, " ") != want {
		t.Errorf("arguments = %v, want %s: %s", got, want, rec.Body)
	}
}

// TestResponsesKeepTheDeveloperRole: a developer message of the Responses
// API is a developer message of the domain request, apart from a system
// message, as one of chat completions is: the provider, the call log and
// the stored response all see the same roles from either dialect. The
// instructions stay a system message.
func TestResponsesKeepTheDeveloperRole(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	turns := `[{"role":"developer","content":"Answer in French."},{"role":"system","content":"Be exact."},{"role":"user","content":"Hi"}]`
	roles := func(msgs []domain.Message) string {
		var out []string
		for _, m := range msgs {
			out = append(out, string(m.Role)+": "+m.Content)
		}
		return strings.Join(out, "; ")
	}
	const want = "developer: Answer in French.; system: Be exact.; user: Hi"

	if status, body := s.do(t, "POST", "/v1/chat/completions", `{"model":"mock-chat","messages":`+turns+`}`); status != 200 {
		t.Fatalf("chat completions: %d %v", status, body)
	}
	if got := roles(s.provider.last(t).Messages); got != want {
		t.Fatalf("chat completions reached the provider as %q; want %q", got, want)
	}

	status, body := s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","store":true,"instructions":"Be brief.","input":`+turns+`}`)
	id, _ := body["id"].(string)
	if status != 200 || id == "" {
		t.Fatalf("responses: %d %v", status, body)
	}
	if got := roles(s.provider.last(t).Messages); got != "system: Be brief.; "+want {
		t.Errorf("the Responses request reached the provider as %q; want the instructions, then %q", got, want)
	}
	if records := s.log.Records(); len(records) != 2 {
		t.Errorf("the call log recorded %d calls; want 2", len(records))
	} else if got := roles(records[1].Messages); got != "system: Be brief.; "+want {
		t.Errorf("the call log recorded the Responses request as %q; want the instructions, then %q", got, want)
	}
	stored, err := s.store.Response(context.Background(), "alice", id, s.clock())
	if err != nil {
		t.Fatal(err)
	}
	if got := roles(stored.Input); got != want {
		t.Errorf("the stored response's input is %q; want %q", got, want)
	}
}

// TestAnAnswerCutShortEndsInAnIncompleteItem: a Response cut short by
// max_output_tokens is incomplete, and so is the item it was cut short in,
// its last, as OpenAI reports it; the items before it are completed. The
// same holds streamed, in the item's done event and in response.incomplete,
// and for the stored response GET serves.
func TestAnAnswerCutShortEndsInAnIncompleteItem(t *testing.T) {
	cut := domain.ChatResponse{FinishReason: domain.FinishLength, Usage: domain.Usage{PromptTokens: 5, CompletionTokens: 8},
		Blocks: []domain.Block{domain.TextBlock("Let me look."), {Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "grep", Arguments: `{"pat`}}}}
	whole := domain.ChatResponse{FinishReason: domain.FinishStop, Usage: domain.Usage{PromptTokens: 5, CompletionTokens: 2}, Blocks: cut.Blocks[:1]}
	answer := func(req domain.ChatRequest) domain.ChatResponse {
		if req.MaxTokens == 8 {
			return cut
		}
		return whole
	}
	gw := &fakeGateway{stores: true,
		chat: func(_ context.Context, req domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{Result: okResult, Response: answer(req)}, nil
		},
		stream: func(_ context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
			resp := answer(req)
			for i, b := range resp.Parts() {
				c := domain.ChatChunk{Index: i, Delta: b.Text}
				if b.Type == domain.BlockToolCall {
					start := b
					start.ToolCall.Arguments = ""
					c = domain.ChatChunk{Index: i, Start: &start, ArgumentsDelta: b.ToolCall.Arguments}
				}
				if err := emit(c); err != nil {
					return gateway.ChatResult{}, err
				}
			}
			return gateway.ChatResult{Result: okResult, Response: resp}, nil
		},
	}
	r := newRig(t, gw, httpapi.Options{})
	type item struct{ Type, Status string }
	type response struct {
		ID                string
		Status            string
		IncompleteDetails *struct{ Reason string } `json:"incomplete_details"`
		Output            []item
	}
	check := func(name string, got response, wantStatus string, want ...item) {
		t.Helper()
		if got.Status != wantStatus || (wantStatus == "incomplete") != (got.IncompleteDetails != nil && got.IncompleteDetails.Reason == "max_output_tokens") ||
			len(got.Output) != len(want) {
			t.Fatalf("%s: %+v, want status %s and items %v", name, got, wantStatus, want)
		}
		for i := range want {
			if got.Output[i] != want[i] {
				t.Errorf("%s: item %d is %+v, want %+v", name, i, got.Output[i], want[i])
			}
		}
	}
	cutItems := []item{{"message", "completed"}, {"function_call", "incomplete"}}
	for _, tc := range []struct {
		max    int
		status string
		items  []item
	}{{8, "incomplete", cutItems}, {100, "completed", []item{{"message", "completed"}}}} {
		body := fmt.Sprintf(`{"model":"mock-chat","input":"Hi","max_output_tokens":%d}`, tc.max)
		rec := r.do("POST", "/v1/responses", body)
		var got response
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("status %d (%v): %s", rec.Code, err, rec.Body)
		}
		check(fmt.Sprintf("max %d", tc.max), got, tc.status, tc.items...)
		rec = r.do("GET", "/v1/responses/"+got.ID, "")
		var stored response
		if err := json.Unmarshal(rec.Body.Bytes(), &stored); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("GET: status %d (%v): %s", rec.Code, err, rec.Body)
		}
		check(fmt.Sprintf("max %d, stored", tc.max), stored, tc.status, tc.items...)

		rec = r.do("POST", "/v1/responses", strings.Replace(body, "{", `{"stream":true,`, 1))
		names, data := namedEvents(t, rec.Body.String())
		var done []item
		for i, name := range names {
			if name == "response.output_item.done" {
				it, _ := data[i]["item"].(map[string]any)
				done = append(done, item{Type: fmt.Sprint(it["type"]), Status: fmt.Sprint(it["status"])})
			}
		}
		if fmt.Sprint(done) != fmt.Sprint(tc.items) {
			t.Errorf("max %d, streamed: items done %v, want %v", tc.max, done, tc.items)
		}
		last := names[len(names)-1]
		raw, _ := json.Marshal(data[len(data)-1]["response"])
		var final response
		if err := json.Unmarshal(raw, &final); err != nil || last != "response."+tc.status {
			t.Fatalf("max %d, streamed: ends with %s (%v)", tc.max, last, err)
		}
		check(fmt.Sprintf("max %d, streamed", tc.max), final, tc.status, tc.items...)
	}
}

// TestAStoredResponsesIDIsReadAsTheClientMeantIt: GET /v1/responses/{id}
// finds a stored response whose id the client escaped (resp%5F…), as the
// model and admin routes read theirs (httpin.PathParam).
func TestAStoredResponsesIDIsReadAsTheClientMeantIt(t *testing.T) {
	gw := agentGateway()
	gw.stores = true
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/responses", `{"model":"mock-chat","input":"Hi"}`)
	var made struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &made); err != nil || rec.Code != http.StatusOK || !strings.HasPrefix(made.ID, "resp_") {
		t.Fatalf("status %d (%v): %s", rec.Code, err, rec.Body)
	}
	escaped := "resp%5F" + strings.TrimPrefix(made.ID, "resp_")
	for _, path := range []string{"/v1/responses/" + escaped, "/v1/responses/" + escaped + "/input_items"} {
		if rec := r.do("GET", path, ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s: status %d: %s", path, rec.Code, rec.Body)
		}
	}
}
