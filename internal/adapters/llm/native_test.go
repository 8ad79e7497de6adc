package llm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

func TestValueAtAndReplace(t *testing.T) {
	doc := []byte(`{ "a" : {"model":1}, "model" :  "x\"y" , "m":{"n":{"model":"deep"}}}`)
	if v, _, _, ok := llm.ValueAt(doc, "model"); !ok || string(v) != `"x\"y"` {
		t.Errorf("ValueAt(model) = %s, %v", v, ok)
	}
	if v, _, _, ok := llm.ValueAt(doc, "m", "n", "model"); !ok || string(v) != `"deep"` {
		t.Errorf("ValueAt(m.n.model) = %s, %v", v, ok)
	}
	if _, _, _, ok := llm.ValueAt(doc, "nope"); ok {
		t.Error("ValueAt found an absent key")
	}
	got := llm.SetString(doc, "z", "model")
	if want := `{ "a" : {"model":1}, "model" :  "z" , "m":{"n":{"model":"deep"}}}`; string(got) != want {
		t.Errorf("SetString = %s", got)
	}
	if got := llm.SetString(doc, "z", "a", "model"); !bytes.Equal(got, doc) {
		t.Errorf("SetString replaced a number: %s", got)
	}
	if got := llm.Insert([]byte(` { }`), "k", []byte("1")); string(got) != ` {"k":1 }` {
		t.Errorf("Insert into {} = %s", got)
	}
	if got := llm.Insert([]byte(`{"a":2}`), "k", []byte("1")); string(got) != `{"k":1,"a":2}` {
		t.Errorf("Insert = %s", got)
	}
	for in, want := range map[string]string{
		`{"k":1,"a":2}`: `{"a":2}`, `{"a":2 , "k":[1,{"k":3}] }`: `{"a":2  }`, `{ "k" : null }`: `{  }`,
		`{"a":{"k":1}}`: `{"a":{"k":1}}`, `{"a":1,"k":2,"b":3}`: `{"a":1,"b":3}`,
	} {
		if got := llm.Remove([]byte(in), "k"); string(got) != want {
			t.Errorf("Remove(%s) = %s; want %s", in, got, want)
		}
	}
}

func TestUpstreamBody(t *testing.T) {
	c := llm.NewClassifier("p", "")
	req := domain.NativeRequest{Body: []byte(`{"model":"a","x":[1]}`), Model: "up", MaxTokens: 64}
	if got, err := llm.UpstreamBody(c, req, "max_tokens", "max_completion_tokens"); err != nil || string(got) != `{"max_tokens":64,"model":"up","x":[1]}` {
		t.Errorf("UpstreamBody = %s, %v", got, err)
	}
	req.Body = []byte(`{"max_completion_tokens":5,"model":"a"}`)
	if got, _ := llm.UpstreamBody(c, req, "max_tokens", "max_completion_tokens"); string(got) != `{"max_completion_tokens":5,"model":"up"}` {
		t.Errorf("a body with its own cap: %s", got)
	}
	req.Body = []byte(`{"max_tokens":null,"model":"a"}`)
	if got, _ := llm.UpstreamBody(c, req, "max_tokens"); string(got) != `{"max_tokens":64,"model":"up"}` {
		t.Errorf("a null cap: %s", got)
	}
	req.Body = []byte(`{"model":7}`)
	if _, err := llm.UpstreamBody(c, req); domain.KindOf(err) != domain.KindInvalid {
		t.Errorf("a model that is not a string: %v", err)
	}
}

// TestForward passes a stream through: prelude events wait for the answer,
// data is replaced where the parser says, a cut-off last event is completed,
// and a stream without its last event is malformed.
func TestForward(t *testing.T) {
	stream := "event: start\ndata: {\"model\":\"up\"}\n\n: comment\n\nevent: delta\ndata: {\"t\":\"hi\"}\r\n\r\ndata: end"
	parse := func(ev llm.RawEvent) llm.Step {
		switch ev.Name {
		case "start":
			return llm.Step{Hold: true, Data: llm.SetString(ev.Data, "answer", "model")}
		case "delta":
			u := domain.Usage{PromptTokens: 3}
			return llm.Step{Event: domain.NativeEvent{Text: "hi", Output: 2, Usage: &u}}
		}
		return llm.Step{Last: true}
	}
	var got []string
	usage, text, err := llm.Forward(llm.NewClassifier("p", ""), strings.NewReader(stream), parse, func(ev domain.NativeEvent) error {
		got = append(got, string(ev.Raw))
		return nil
	})
	want := []string{"event: start\ndata: {\"model\":\"answer\"}\n\n", "event: delta\ndata: {\"t\":\"hi\"}\r\n\r\n", "data: end\n\n"}
	if err != nil || !reflect.DeepEqual(got, want) || text != "hi" || usage == nil || usage.PromptTokens != 3 {
		t.Errorf("Forward = %q, %q, %+v, %v", got, text, usage, err)
	}
	_, _, err = llm.Forward(llm.NewClassifier("p", ""), strings.NewReader("event: start\ndata: {}\n\n"), parse, func(domain.NativeEvent) error {
		t.Error("a prelude event was sent before the answer began")
		return nil
	})
	if domain.KindOf(err) != domain.KindUpstream {
		t.Errorf("a stream without its last event: %v", err)
	}
	stop := errors.New("client gone")
	_, _, err = llm.Forward(llm.NewClassifier("p", ""), strings.NewReader(stream), parse, func(domain.NativeEvent) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit's error: %v", err)
	}
}

// FuzzValueAt checks the JSON editing helpers against encoding/json: in a
// valid document, ValueAt finds what a walk of encoding/json's tokens finds
// (the first of repeated keys, at the same offsets); in any bytes, a value
// found is JSON; a renamed document is still valid JSON holding the new
// name; and so is a valid document with its member removed.
func FuzzValueAt(f *testing.F) {
	for _, seed := range []string{`{"model":"x"}`, `{"a":{"model":[1,{"b":2}]},"model":null}`, `{"model" : "\u00e9\"",  "x":1}`, `[1]`, `{"model":`,
		`{"mo\u0064el":"esc","model":"second"}`, `{"a":"}{\"","model":[{"]":"["}]}`, `{"response":{"id":1,"model":"r"}}`, `{"a":[}, "model":1}`,
		`{"model":"up","model":"dup"}`, ` {"x":-1.5e3 ,"model":true}`, `{"model":"<&>"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, path := range [][]string{{"model"}, {"response", "model"}} {
			v, start, end, ok := llm.ValueAt(doc, path...)
			if ok && (!json.Valid(v) || !bytes.Equal(v, doc[start:end])) {
				t.Fatalf("ValueAt(%q, %q) = %q at %d:%d, not JSON or not where it says", doc, path, v, start, end)
			}
			if !json.Valid(doc) {
				continue
			}
			wv, ws, we, wok := tokenWalk(doc, path...)
			if ok != wok || !bytes.Equal(v, wv) || start != ws || end != we {
				t.Fatalf("ValueAt(%q, %q) = %q %d:%d %v; the token walk finds %q %d:%d %v", doc, path, v, start, end, ok, wv, ws, we, wok)
			}
			if len(path) == 1 && !json.Valid(llm.Remove(doc, path[0])) {
				t.Fatalf("Remove(%q, %q) = %q, not JSON", doc, path[0], llm.Remove(doc, path[0]))
			}
			out := llm.SetString(doc, "re<named>", path...)
			if !json.Valid(out) {
				t.Fatalf("SetString(%q) = %q, not JSON", doc, out)
			}
			if ok && v[0] == '"' {
				var got string
				nv, _, _, _ := llm.ValueAt(out, path...)
				if json.Unmarshal(nv, &got) != nil || got != "re<named>" {
					t.Fatalf("SetString(%q) = %q: the value is %q", doc, out, nv)
				}
			}
		}
	})
}

// tokenWalk finds the value at path as encoding/json's tokens lead to it:
// what ValueAt's scan of the bytes must agree with on valid JSON.
func tokenWalk(doc []byte, path ...string) (value []byte, start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	for depth := 0; ; depth++ {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, 0, 0, false
		}
		found := false
		for dec.More() {
			tok, err := dec.Token()
			key, isKey := tok.(string)
			if err != nil || !isKey {
				return nil, 0, 0, false
			}
			if key == path[depth] {
				found = true
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, 0, false
			}
		}
		if !found {
			return nil, 0, 0, false
		}
		if depth == len(path)-1 {
			start = int(dec.InputOffset())
			for start < len(doc) && strings.ContainsRune(" \t\r\n:", rune(doc[start])) {
				start++
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, 0, 0, false
			}
			end = int(dec.InputOffset())
			return doc[start:end], start, end, true
		}
	}
}

// FuzzRawEvents reads arbitrary bytes as an event stream: every event has
// data, and replacing its data keeps the event whole.
func FuzzRawEvents(f *testing.F) {
	for _, seed := range []string{"event: a\ndata: x\n\n", "data: a\ndata: b\n\n: c\n\nid: 1\ndata: z", "\n\n\r\ndata:\r\n\r\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events := llm.NewRawEvents(bytes.NewReader(body))
		for {
			ev, err := events.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "exceeds") {
					t.Fatalf("Next: %v", err)
				}
				return
			}
			if ev.Data == nil || !bytes.Contains(ev.Raw, []byte("data:")) {
				t.Fatalf("event %q without data", ev.Raw)
			}
			if out := ev.WithData([]byte("new")); !bytes.Contains(out, []byte("new")) {
				t.Fatalf("WithData(%q) = %q", ev.Raw, out)
			}
		}
	})
}
