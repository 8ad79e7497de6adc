package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tidygate/tidygate/internal/gateway"
)

// storeInput stores a response to a request with input (JSON) and returns
// its id and the request id its items' ids are made of.
func storeInput(t *testing.T, s *storeRig, input string, extra ...string) (id, requestID string) {
	t.Helper()
	body := `{"model":"mock-chat","store":true,"input":` + input + strings.Join(extra, "") + `}`
	status, resp := s.do(t, "POST", "/v1/responses", body)
	id, _ = resp["id"].(string)
	if status != 200 || resp["store"] != true || !strings.HasPrefix(id, "resp_") {
		t.Fatalf("POST %s = %d %v", body, status, resp)
	}
	return id, strings.TrimPrefix(id, "resp_")
}

// listItems lists a response's input items with query and returns the
// status and the body as sent.
func listItems(t *testing.T, s *storeRig, id, query string, key ...string) (int, string) {
	t.Helper()
	path := "/v1/responses/" + id + "/input_items"
	if query != "" {
		path += "?" + query
	}
	status, raw := s.raw(t, "GET", path, "", key...)
	return status, string(raw)
}

// TestInputItemsListAStoredResponsesInput: the input items of a stored
// response are its input as Responses items, the instructions left out:
// a developer message and a system message, each in its own role, a
// message with text and an image, reasoning, a function call and its
// output, each with an id made of the response's and its position; the
// image's URL only when include asks for it.
func TestInputItemsListAStoredResponsesInput(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	id, req := storeInput(t, s, `[
		{"role":"developer","content":"Answer in French."},
		{"role":"system","content":"Be exact."},
		{"role":"user","content":[{"type":"input_text","text":"What is in this picture?"},
			{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}]},
		{"type":"reasoning","summary":[{"type":"summary_text","text":"The weather, then."}],"encrypted_content":"opaque"},
		{"type":"function_call","call_id":"call_9","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
		{"type":"function_call_output","call_id":"call_9","output":"sunny"}]`, `,"instructions":"Be brief."`)
	calls := len(s.provider.seen)

	items := fmt.Sprintf(`[
		{"type":"message","id":"msg_%[1]s_in0","status":"completed","role":"developer",
		 "content":[{"type":"input_text","text":"Answer in French."}]},
		{"type":"message","id":"msg_%[1]s_in1","status":"completed","role":"system",
		 "content":[{"type":"input_text","text":"Be exact."}]},
		{"type":"message","id":"msg_%[1]s_in2","status":"completed","role":"user",
		 "content":[{"type":"input_text","text":"What is in this picture?"},{"type":"input_image","image_url":%[2]s,"detail":"auto"}]},
		{"type":"reasoning","id":"rs_%[1]s_in3","summary":[{"type":"summary_text","text":"The weather, then."}],"encrypted_content":"opaque"},
		{"type":"function_call","id":"fc_%[1]s_in4","status":"completed","call_id":"call_9","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
		{"type":"function_call_output","id":"fco_%[1]s_in5","status":"completed","call_id":"call_9","output":"sunny"}]`, req, "%s")
	list := func(first, last int, data string) string {
		return fmt.Sprintf(`{"object":"list","data":%s,"first_id":"%s","last_id":"%s","has_more":false}`, data,
			itemID(t, data, first), itemID(t, data, last))
	}
	asc := fmt.Sprintf(items, "null")
	withImage := fmt.Sprintf(items, `"data:image/png;base64,iVBORw0KGgo="`)
	for _, tc := range []struct{ query, want string }{
		{"order=asc", list(0, 5, asc)},
		{"", list(0, 5, reversed(t, asc))}, // desc is the default
		{"order=desc", list(0, 5, reversed(t, asc))},
		{"order=asc&include=message.input_image.image_url", list(0, 5, withImage)},
		{"order=asc&include[]=message.input_image.image_url&include[]=reasoning.encrypted_content", list(0, 5, withImage)},
	} {
		status, body := listItems(t, s, id, tc.query)
		if status != 200 || !sameJSON(t, body, tc.want) {
			t.Errorf("?%s: %d %s\nwant %s", tc.query, status, body, tc.want)
		}
	}
	if len(s.provider.seen) != calls {
		t.Error("listing input items called the provider")
	}
}

// itemID is the id of the item at index i of data, a JSON array of items.
func itemID(t *testing.T, data string, i int) string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(data), &items); err != nil {
		t.Fatal(err)
	}
	return items[i].ID
}

// reversed is data, a JSON array, in the reverse order.
func reversed(t *testing.T, data string) string {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(data), &items); err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	return mustJSON(t, items)
}

// TestInputItemsOfAContinuedResponse: a response that continues another
// lists the conversation it answered: the earlier response's input and
// output, then its own input. The earlier response lists its own input only.
func TestInputItemsOfAContinuedResponse(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	first, firstReq := storeInput(t, s, `"Weather in Oslo?"`,
		`,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{}}}]`)
	second, req := storeInput(t, s, `[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]`,
		`,"previous_response_id":"`+first+`"`)

	status, body := listItems(t, s, second, "order=asc")
	want := fmt.Sprintf(`{"object":"list","data":[
		{"type":"message","id":"msg_%[1]s_in0","status":"completed","role":"user","content":[{"type":"input_text","text":"Weather in Oslo?"}]},
		{"type":"function_call","id":"fc_%[1]s_in1","status":"completed","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
		{"type":"function_call_output","id":"fco_%[1]s_in2","status":"completed","call_id":"call_1","output":"sunny"}],
		"first_id":"msg_%[1]s_in0","last_id":"fco_%[1]s_in2","has_more":false}`, req)
	if status != 200 || !sameJSON(t, body, want) {
		t.Errorf("the continued response's items: %d %s\nwant %s", status, body, want)
	}
	status, body = listItems(t, s, first, "")
	want = fmt.Sprintf(`{"object":"list","data":[
		{"type":"message","id":"msg_%[1]s_in0","status":"completed","role":"user","content":[{"type":"input_text","text":"Weather in Oslo?"}]}],
		"first_id":"msg_%[1]s_in0","last_id":"msg_%[1]s_in0","has_more":false}`, firstReq)
	if status != 200 || !sameJSON(t, body, want) {
		t.Errorf("the first response's items: %d %s\nwant %s", status, body, want)
	}
}

// TestInputItemsPage: limit, after, before and order page through the
// items, first_id, last_id and has_more saying where the page is; an id
// from one page finds the next on a later call, and the official SDK's
// auto-pager walks the whole list either way.
func TestInputItemsPage(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	id, req := storeInput(t, s, `[{"role":"user","content":"m0"},{"role":"user","content":"m1"},{"role":"user","content":"m2"},
		{"role":"user","content":"m3"},{"role":"user","content":"m4"}]`)
	item := func(n int) string { return fmt.Sprintf("msg_%s_in%d", req, n) }
	type page struct {
		Data []struct {
			ID      string `json:"id"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"data"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
		HasMore bool    `json:"has_more"`
	}
	for _, tc := range []struct {
		query   string
		texts   string
		hasMore bool
	}{
		{"order=asc&limit=2", "m0 m1", true},
		{"order=asc&limit=2&after=" + item(1), "m2 m3", true},
		{"order=asc&limit=2&after=" + item(3), "m4", false},
		{"order=asc&limit=2&after=" + item(4), "", false},
		{"order=asc&limit=2&before=" + item(4), "m2 m3", true},
		{"order=asc&limit=2&before=" + item(1), "m0", false},
		{"limit=2", "m4 m3", true},
		{"limit=2&after=" + item(3), "m2 m1", true},
		{"limit=2&after=" + item(1), "m0", false},
		{"order=desc&limit=2&before=" + item(0), "m2 m1", true},
		{"limit=100", "m4 m3 m2 m1 m0", false},
		{"limit=1", "m4", true},
		{"after=" + item(2), "m1 m0", false},
	} {
		status, body := listItems(t, s, id, tc.query)
		var p page
		if err := json.Unmarshal([]byte(body), &p); err != nil || status != 200 {
			t.Fatalf("?%s: %d %s", tc.query, status, body)
		}
		var texts []string
		for _, d := range p.Data {
			texts = append(texts, d.Content[0].Text)
			if d.ID != item(int(d.Content[0].Text[1]-'0')) {
				t.Errorf("?%s: item %s has id %s", tc.query, d.Content[0].Text, d.ID)
			}
		}
		if got := strings.Join(texts, " "); got != tc.texts || p.HasMore != tc.hasMore {
			t.Errorf("?%s: %q, has_more %v; want %q, %v", tc.query, got, p.HasMore, tc.texts, tc.hasMore)
		}
		switch {
		case len(p.Data) == 0 && (p.FirstID != nil || p.LastID != nil):
			t.Errorf("?%s: an empty page has first_id %v, last_id %v; want null", tc.query, p.FirstID, p.LastID)
		case len(p.Data) > 0 && (p.FirstID == nil || *p.FirstID != p.Data[0].ID || p.LastID == nil || *p.LastID != p.Data[len(p.Data)-1].ID):
			t.Errorf("?%s: first_id %v, last_id %v do not name the page's ends", tc.query, p.FirstID, p.LastID)
		}
	}

	client := s.client(goodKey)
	for order, want := range map[responses.InputItemListParamsOrder]string{"asc": "m0 m1 m2 m3 m4", "desc": "m4 m3 m2 m1 m0"} {
		pager := client.Responses.InputItems.ListAutoPaging(context.Background(), id,
			responses.InputItemListParams{Order: order, Limit: openai.Int(2)})
		var texts []string
		for pager.Next() {
			it := pager.Current()
			if it.Type != "message" || it.Role != "user" || it.ID == "" {
				t.Errorf("%s: the SDK read item %s", order, it.RawJSON())
			}
			texts = append(texts, it.AsMessage().Content[0].Text)
		}
		if err := pager.Err(); err != nil || strings.Join(texts, " ") != want {
			t.Errorf("%s: the SDK's pager listed %q, %v; want %q", order, texts, err, want)
		}
	}
}

// TestInputItemsRefuseBadParameters: a limit out of 1 to 100, an order
// other than asc or desc, an after or before that names no item of the
// response, both at once, and an include OpenAI does not define are 400s
// that name the parameter.
func TestInputItemsRefuseBadParameters(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	id, req := storeInput(t, s, `[{"role":"user","content":"m0"},{"role":"user","content":"m1"}]`)
	_, otherReq := storeInput(t, s, `"Hi"`)
	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"limit=1.5", "limit"},
		{"order=up", "order"},
		{"order=ASC", "order"},
		{"after=msg_nope", "after"},
		{"after=msg_" + otherReq + "_in0", "after"}, // another response's item
		{"after=msg_" + req + "_in2", "after"},      // past the end
		{"before=msg_nope", "before"},
		{"after=msg_" + req + "_in0&before=msg_" + req + "_in1", "before"},
		{"include=file_search_call.nope", "include"},
		{"include[]=reasoning.encrypted_content&include[]=bogus", "include"},
	} {
		status, body := listItems(t, s, id, tc.query)
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("?%s: %d %s", tc.query, status, body)
		}
		wantError(t, status, out, http.StatusBadRequest, tc.param, "")
	}
	// Every include OpenAI defines is accepted: the others concern items
	// tidygate never stores.
	for _, inc := range []string{"file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
		"message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
		"reasoning.encrypted_content", "message.output_text.logprobs"} {
		if status, body := listItems(t, s, id, "include="+url.QueryEscape(inc)); status != 200 {
			t.Errorf("include=%s: %d %s", inc, status, body)
		}
	}
}

// TestInputItemsKeepTheirKindsAndOrder: a function call's output between
// two user messages, which the stored conversation holds in one message
// with the first, lists between them; an assistant's message of two parts
// lists as two messages; an output of text and an image lists as parts.
func TestInputItemsKeepTheirKindsAndOrder(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	id, _ := storeInput(t, s, `[{"role":"user","content":"a"},
		{"type":"function_call_output","call_id":"call_1","output":"x"},
		{"role":"user","content":"b"},
		{"role":"assistant","content":[{"type":"output_text","text":"c"},{"type":"refusal","refusal":"d"}]},
		{"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"see"},
			{"type":"input_image","image_url":"https://example.com/a.png"}]}]`)
	status, body := listItems(t, s, id, "order=asc&include=message.input_image.image_url")
	var list struct {
		Data []struct {
			Type   string          `json:"type"`
			Role   string          `json:"role"`
			Output json.RawMessage `json:"output"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var kinds []string
	for _, d := range list.Data {
		kinds = append(kinds, d.Type+"/"+d.Role)
	}
	want := "message/user function_call_output/ message/user message/assistant message/assistant function_call_output/"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("items %s\nwant %s", got, want)
	}
	if n := len(list.Data); n != 6 || string(list.Data[1].Output) != `"x"` || !sameJSON(t, string(list.Data[5].Output),
		`[{"type":"input_text","text":"see"},{"type":"input_image","image_url":"https://example.com/a.png","detail":"auto"}]`) {
		t.Errorf("outputs: %s", body)
	}
}
