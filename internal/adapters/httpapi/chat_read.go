package httpapi

import (
	"encoding/json"
	"reflect"
)

// The chat completions request read without reflection (jsonReader): what
// decodeChat tries first, before json.Unmarshal. FuzzReadChatRequest holds
// it to json.Unmarshal on every body it reads.

// The JSON names of the chat completions request's types, for the keys
// that name no field but would for json.Unmarshal (jsonReader.unknown).
// A field added to a type and not to its reader here makes its key one of
// those, so the body goes to json.Unmarshal.
var (
	chatFields           = wireFields(reflect.TypeFor[chatRequestJSON]())
	messageFields        = wireFields(reflect.TypeFor[messageJSON]())
	toolCallFields       = wireFields(reflect.TypeFor[toolCallJSON]())
	toolCallFuncFields   = wireFields(reflect.TypeFor[toolCallFuncJSON]())
	toolFields           = wireFields(reflect.TypeFor[toolJSON]())
	functionFields       = wireFields(reflect.TypeFor[functionJSON]())
	streamOptionsFields  = wireFields(reflect.TypeFor[streamOptionsJSON]())
	responseFormatFields = wireFields(reflect.TypeFor[responseFormatJSON]())
	jsonSchemaFields     = wireFields(reflect.TypeFor[jsonSchemaJSON]())
)

// chatRoles are the roles a message is read as without a copy of its own.
var chatRoles = []string{"system", "developer", "user", "assistant", "tool"}

// readChatRequest reads body, which json.Valid has accepted, into w as
// json.Unmarshal would; false when the body has a shape it leaves to
// json.Unmarshal (see jsonReader), w then being partly read.
func readChatRequest(body []byte, w *chatRequestJSON) bool {
	d := jsonReader{data: body}
	if !d.object() {
		return false
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "model":
			d.once(&seen, 0)
			d.text(&w.Model)
		case "messages":
			d.once(&seen, 1)
			w.Messages = readMessages(&d)
		case "max_tokens":
			d.once(&seen, 2)
			d.intPtr(&w.MaxTokens)
		case "max_completion_tokens":
			d.once(&seen, 3)
			d.intPtr(&w.MaxCompletionTokens)
		case "temperature":
			d.once(&seen, 4)
			d.floatPtr(&w.Temperature)
		case "top_p":
			d.once(&seen, 5)
			d.floatPtr(&w.TopP)
		case "stop":
			d.once(&seen, 6)
			d.rawMessage(&w.Stop)
		case "stream":
			d.once(&seen, 7)
			d.boolean(&w.Stream)
		case "stream_options":
			d.once(&seen, 8)
			w.StreamOptions = readStreamOptions(&d)
		case "user":
			d.once(&seen, 9)
			d.text(&w.User)
		case "tools":
			d.once(&seen, 10)
			w.Tools = readTools(&d)
		case "tool_choice":
			d.once(&seen, 11)
			d.rawMessage(&w.ToolChoice)
		case "parallel_tool_calls":
			d.once(&seen, 12)
			d.boolPtr(&w.ParallelToolCalls)
		case "response_format":
			d.once(&seen, 13)
			w.ResponseFormat = readResponseFormat(&d)
		case "reasoning_effort":
			d.once(&seen, 14)
			d.textPtr(&w.ReasoningEffort)
		case "n":
			d.once(&seen, 15)
			d.intPtr(&w.N)
		case "functions":
			d.once(&seen, 16)
			d.rawMessage(&w.Functions)
		case "function_call":
			d.once(&seen, 17)
			d.rawMessage(&w.FunctionCall)
		case "logprobs":
			d.once(&seen, 18)
			d.boolPtr(&w.Logprobs)
		case "top_logprobs":
			d.once(&seen, 19)
			d.intPtr(&w.TopLogprobs)
		case "audio":
			d.once(&seen, 20)
			d.rawMessage(&w.Audio)
		case "modalities":
			d.once(&seen, 21)
			d.texts(&w.Modalities)
		case "seed":
			d.once(&seen, 22)
			d.int64Ptr(&w.Seed)
		case "presence_penalty":
			d.once(&seen, 23)
			d.floatPtr(&w.PresencePenalty)
		case "frequency_penalty":
			d.once(&seen, 24)
			d.floatPtr(&w.FrequencyPenalty)
		default:
			d.unknown(k, chatFields)
		}
	}
	return !d.failed
}

// readMessages reads the messages array; null is nil.
func readMessages(d *jsonReader) []messageJSON {
	if d.null() || !d.array() {
		return nil
	}
	var room [8]messageJSON
	items := room[:0]
	for d.element() {
		items = append(items, readMessage(d))
	}
	return exactly(items)
}

func readMessage(d *jsonReader) messageJSON {
	var m messageJSON
	if d.null() || !d.object() {
		return m
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "role":
			d.once(&seen, 0)
			d.textOf(&m.Role, chatRoles)
		case "content":
			d.once(&seen, 1)
			d.rawMessage(&m.Content)
		case "name":
			d.once(&seen, 2)
			d.text(&m.Name)
		case "tool_calls":
			d.once(&seen, 3)
			m.ToolCalls = readToolCalls(d)
		case "tool_call_id":
			d.once(&seen, 4)
			d.text(&m.ToolCallID)
		default:
			d.unknown(k, messageFields)
		}
	}
	return m
}

// readToolCalls reads an assistant message's tool calls; null is nil.
func readToolCalls(d *jsonReader) []toolCallJSON {
	if d.null() || !d.array() {
		return nil
	}
	var room [4]toolCallJSON
	items := room[:0]
	for d.element() {
		items = append(items, readToolCall(d))
	}
	return exactly(items)
}

func readToolCall(d *jsonReader) toolCallJSON {
	var c toolCallJSON
	if d.null() || !d.object() {
		return c
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "id":
			d.once(&seen, 0)
			d.text(&c.ID)
		case "type":
			d.once(&seen, 1)
			d.text(&c.Type)
		case "function":
			d.once(&seen, 2)
			c.Function = readToolCallFunc(d)
		default:
			d.unknown(k, toolCallFields)
		}
	}
	return c
}

func readToolCallFunc(d *jsonReader) toolCallFuncJSON {
	var f toolCallFuncJSON
	if d.null() || !d.object() {
		return f
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "name":
			d.once(&seen, 0)
			d.text(&f.Name)
		case "arguments":
			d.once(&seen, 1)
			d.text(&f.Arguments)
		default:
			d.unknown(k, toolCallFuncFields)
		}
	}
	return f
}

// readTools reads the tools array; null is nil.
func readTools(d *jsonReader) []toolJSON {
	if d.null() || !d.array() {
		return nil
	}
	var room [8]toolJSON
	items := room[:0]
	for d.element() {
		items = append(items, readTool(d))
	}
	return exactly(items)
}

func readTool(d *jsonReader) toolJSON {
	var t toolJSON
	if d.null() || !d.object() {
		return t
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "type":
			d.once(&seen, 0)
			d.text(&t.Type)
		case "function":
			d.once(&seen, 1)
			t.Function = readFunction(d)
		default:
			d.unknown(k, toolFields)
		}
	}
	return t
}

func readFunction(d *jsonReader) functionJSON {
	var f functionJSON
	if d.null() || !d.object() {
		return f
	}
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "name":
			d.once(&seen, 0)
			d.text(&f.Name)
		case "description":
			d.once(&seen, 1)
			d.text(&f.Description)
		case "parameters":
			d.once(&seen, 2)
			d.rawMessage(&f.Parameters)
		case "strict":
			d.once(&seen, 3)
			d.boolean(&f.Strict)
		default:
			d.unknown(k, functionFields)
		}
	}
	return f
}

func readStreamOptions(d *jsonReader) *streamOptionsJSON {
	if d.null() || !d.object() {
		return nil
	}
	o := new(streamOptionsJSON)
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "include_usage":
			d.once(&seen, 0)
			d.boolean(&o.IncludeUsage)
		default:
			d.unknown(k, streamOptionsFields)
		}
	}
	return o
}

func readResponseFormat(d *jsonReader) *responseFormatJSON {
	if d.null() || !d.object() {
		return nil
	}
	f := new(responseFormatJSON)
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "type":
			d.once(&seen, 0)
			d.text(&f.Type)
		case "json_schema":
			d.once(&seen, 1)
			f.JSONSchema = readJSONSchema(d)
		default:
			d.unknown(k, responseFormatFields)
		}
	}
	return f
}

func readJSONSchema(d *jsonReader) *jsonSchemaJSON {
	if d.null() || !d.object() {
		return nil
	}
	s := new(jsonSchemaJSON)
	var seen uint64
	for k, ok := d.key(); ok; k, ok = d.key() {
		switch string(k) {
		case "name":
			d.once(&seen, 0)
			d.text(&s.Name)
		case "schema":
			d.once(&seen, 1)
			d.rawMessage(&s.Schema)
		case "strict":
			d.once(&seen, 2)
			d.boolean(&s.Strict)
		default:
			d.unknown(k, jsonSchemaFields)
		}
	}
	return s
}

// decodeChatJSON decodes a chat completions body into w: by
// readChatRequest when it can, by decodeJSON (and its errors) otherwise.
// Either way a key given twice is refused.
func decodeChatJSON(body []byte, w *chatRequestJSON) error {
	if json.Valid(body) && firstByte(body) == '{' && readChatRequest(body, w) {
		if key, where, found := duplicateKey(body); found {
			return duplicateKeyError(key, where)
		}
		return nil
	}
	slow := new(chatRequestJSON) // so that w, read above, stays on its caller's stack
	err := decodeJSON(body, slow)
	*w = *slow
	return err
}
