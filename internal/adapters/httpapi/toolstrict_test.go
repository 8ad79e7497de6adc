package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
)

// A function tool's strict flag reaches the domain request from each
// dialect's own place for it: chat completions' function.strict, the
// Responses API's and Anthropic's strict. Only an explicit true is strict:
// the Responses API's default (true) is not assumed for a tool that does
// not say.
func TestToolStrictIsCarried(t *testing.T) {
	schema := `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`
	cases := []struct {
		name, path, body string
		want             []bool // each tool's Strict
	}{
		{"chat completions", "/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"x"}],"tools":[
		  {"type":"function","function":{"name":"a","parameters":` + schema + `,"strict":true}},
		  {"type":"function","function":{"name":"b","parameters":` + schema + `,"strict":false}},
		  {"type":"function","function":{"name":"c","parameters":` + schema + `}}]}`, []bool{true, false, false}},
		{"chat completions, left to json.Unmarshal", "/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"x"}],"tools":[
		  {"type":"function","function":{"name":"a","parameters":` + schema + `,"STRICT":true}}]}`, []bool{true}},
		{"responses", "/v1/responses", `{"model":"mock","input":"x","tools":[
		  {"type":"function","name":"a","parameters":` + schema + `,"strict":true},
		  {"type":"function","name":"b","parameters":` + schema + `,"strict":false},
		  {"type":"function","name":"c","parameters":` + schema + `}]}`, []bool{true, false, false}},
		{"messages", "/v1/messages", `{"model":"mock","max_tokens":10,"messages":[{"role":"user","content":"x"}],"tools":[
		  {"name":"a","input_schema":` + schema + `,"strict":true},
		  {"name":"b","input_schema":` + schema + `,"strict":false},
		  {"name":"c","input_schema":` + schema + `}]}`, []bool{true, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := &fakeGateway{}
			r := newRig(t, gw, httpapi.Options{})
			if rec := r.do("POST", tc.path, tc.body); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			tools := lastOf(t, gw, &gw.chats, "the gateway got no chat request").Tools
			if len(tools) != len(tc.want) {
				t.Fatalf("tools %+v", tools)
			}
			for i, want := range tc.want {
				if tools[i].Strict != want {
					t.Errorf("tools[%d] (%s): Strict = %v, want %v", i, tools[i].Name, tools[i].Strict, want)
				}
			}
		})
	}
}
