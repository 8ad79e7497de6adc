package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// chatBodiesRead are bodies of the shapes readChatRequest reads itself.
var chatBodiesRead = []string{
	`{"model":"mock-chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":64,"temperature":0.2}`,
	` { "model" : "m" , "messages" : [ ] , "stream" : true , "stream_options" : { "include_usage" : true } } `,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x","name":"ann"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
	`{"model":"m","messages":[null,{"role":"us\u0065r","content":"line\nbreak \u00e9"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}}}`,
	`{"model":"m","stop":["a","b"],"top_p":1e-1,"max_completion_tokens":-0,"n":1,"user":"u","reasoning_effort":"low","logprobs":false,"top_logprobs":0,"modalities":["text"],"functions":[],"function_call":"auto","audio":null}`,
	`{"model":null,"messages":null,"max_tokens":null,"temperature":null,"stop":null,"stream":null,"stream_options":null,"tools":null,"response_format":null,"reasoning_effort":null,"modalities":null,"parallel_tool_calls":null}`,
	`{"extra":{"deep":[1,{"x":"}]"}],"s":"\"{"},"model":"m","metadata":[],"seed":12,"ok":true,"no":null}`,
	`{"model":"m","seed":-123456789012345678,"presence_penalty":-2,"frequency_penalty":1.5e0}`,
	`{"model":"m","seed":0,"presence_penalty":0,"frequency_penalty":null}`,
	"{\"model\":\"bad \xff utf-8\",\"messages\":[{\"role\":\"user\",\"content\":\"\xfe\"}]}",
	`{"model":"m","messages":[{"role":"user","content":"1"},{"role":"user","content":"2"},{"role":"user","content":"3"},{"role":"user","content":"4"},{"role":"user","content":"5"},{"role":"user","content":"6"},{"role":"user","content":"7"},{"role":"user","content":"8"},{"role":"user","content":"9"}]}`,
}

// chatBodiesLeft are bodies readChatRequest leaves to json.Unmarshal.
var chatBodiesLeft = []string{
	`{"MODEL":"m"}`,                          // matches a field only case-insensitively
	`{"messages":[{"Role":"user"}]}`,         // the same, one level down
	`{"mod\u0065l":"m"}`,                     // a key written with an escape
	`{"modèl":"m"}`,                          // a key outside ASCII
	`{"model":"a","model":"b"}`,              // a field given twice
	`{"max_tokens":1.5}`,                     // not an integer
	`{"max_tokens":1e3}`,                     // an integer json.Unmarshal refuses for int
	`{"max_tokens":1234567890123456789}`,     // more digits than it reads
	`{"seed":-9223372036854775808}`,          // the same, an int64 all the same
	`{"seed":9223372036854775808}`,           // beyond an int64
	`{"seed":7.0}`,                           // not an integer
	`{"logit_bias":{"50256":-100}}`,          // a field it does not read
	`{"temperature":1e999}`,                  // out of range
	`{"model":5}`,                            // a value of another type
	`{"messages":{}}`,                        // the same
	`{"stream":"yes"}`,                       // the same
	`{"tools":[{"function":"f"}]}`,           // the same, nested
	`["model"]`,                              // not an object
	`{"model":"m"`,                           // not JSON
	`{"model":"m"} {}`,                       // more than one value
	`{"stream_options":{"include_usage":1}}`, // the same, in a pointer to a struct
}

// checkReadChatRequest holds readChatRequest, and decodeChatJSON, to
// decodeJSON (json.Unmarshal and its errors): whatever readChatRequest reads
// is what json.Unmarshal decodes, and decodeChatJSON accepts and refuses
// exactly what decodeJSON does, with the same result or error.
func checkReadChatRequest(t *testing.T, body []byte) (read bool) {
	t.Helper()
	var want chatRequestJSON
	wantErr := decodeJSON(body, &want)
	if json.Valid(body) && firstByte(body) == '{' {
		var got chatRequestJSON
		if read = readChatRequest(body, &got); read {
			var plain chatRequestJSON
			if err := json.Unmarshal(body, &plain); err != nil {
				t.Fatalf("body %q: read, but json.Unmarshal fails: %v", body, err)
			}
			if !reflect.DeepEqual(got, plain) {
				t.Fatalf("body %q: read as\n%+v\njson.Unmarshal gives\n%+v", body, got, plain)
			}
		}
	}
	var got chatRequestJSON
	err := decodeChatJSON(body, &got)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("body %q: decodeChatJSON gives %v, decodeJSON %v", body, err, wantErr)
	case err != nil && err.Error() != wantErr.Error():
		t.Fatalf("body %q: decodeChatJSON fails with %q, decodeJSON with %q", body, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("body %q: decodeChatJSON gives\n%+v\ndecodeJSON\n%+v", body, got, want)
	}
	return read
}

func TestReadChatRequestAgreesWithUnmarshal(t *testing.T) {
	for _, body := range chatBodiesRead {
		if !checkReadChatRequest(t, []byte(body)) {
			t.Errorf("body %q: left to json.Unmarshal, but it has a shape readChatRequest reads", body)
		}
	}
	for _, body := range chatBodiesLeft {
		if checkReadChatRequest(t, []byte(body)) {
			t.Errorf("body %q: read, but it is to be left to json.Unmarshal", body)
		}
	}
}

func TestReadChatRequestKeepsTheDuplicateKeyCheck(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x","extra":1,"extra":2}]}`)
	var w chatRequestJSON
	if !readChatRequest(body, &w) {
		t.Fatal("the body is of a shape readChatRequest reads")
	}
	err := decodeChatJSON(body, &w)
	if de, ok := errors.AsType[*domain.Error](err); !ok || de.Code != "duplicate_key" || de.Param != "messages[0]" {
		t.Fatalf("err = %v, want the duplicate key in messages[0]", err)
	}
}

// FuzzReadChatRequest checks readChatRequest and decodeChatJSON against
// decodeJSON on any body (checkReadChatRequest).
func FuzzReadChatRequest(f *testing.F) {
	for _, body := range append(chatBodiesRead, chatBodiesLeft...) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkReadChatRequest(t, body) })
}
