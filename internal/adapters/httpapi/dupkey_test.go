package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// duplicateKeyByTokens is the reference duplicateKey is checked against:
// the same search through a json.Decoder's tokens (what tidygate did
// before reading bodies in place), slower and allocating per token.
func duplicateKeyByTokens(dec *json.Decoder, path string) (key, where string, found bool) {
	tok, err := dec.Token()
	if err != nil {
		return "", "", false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]struct{}{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return "", "", false
			}
			name, _ := k.(string)
			if _, dup := seen[name]; dup {
				if path == "" {
					return name, "the top-level object", true
				}
				return name, path, true
			}
			seen[name] = struct{}{}
			child := name
			if path != "" {
				child = path + "." + name
			}
			if key, where, found := duplicateKeyByTokens(dec, child); found {
				return key, where, true
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if key, where, found := duplicateKeyByTokens(dec, fmt.Sprintf("%s[%d]", path, i)); found {
				return key, where, true
			}
		}
		_, _ = dec.Token() // ']'
	}
	return "", "", false
}

var duplicateKeySeeds = []string{
	`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":1,"b":{"a":2}}`,
	`{"messages":[{"role":"user","content":"x"},{"role":"user","role":"system"}]}`,
	`{"messages":[{"content":[{"type":"text","text":"x","text":"y"}]}]}`,
	`{"a\u0062":1,"ab":2}`, `{"\u00e9":1,"é":2}`, `{"é":1,"e":2}`, `{"a":"x\"y","a\"":1,"a\"":2}`,
	`{"a":[1,[2,{"k":true,"k":null}]]}`, `{"":{"x":1,"x":2}}`, `{"":1,"":2}`,
	" {\n \"a\" : [ ] , \"b\" : { } , \"a\" : 0 } ", `{"a":{"b":1},"a":{"b":2}}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":3}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17}`,
	"{\"\xff\":1,\"\xfe\":2}", `{"a":-1.5e+10,"b":"\\","b":1}`,
}

func checkDuplicateKey(t *testing.T, body string) {
	t.Helper()
	if !json.Valid([]byte(body)) {
		return // duplicateKey runs on bodies the decoder accepted
	}
	key, where, found := duplicateKey([]byte(body))
	wantKey, wantWhere, wantFound := duplicateKeyByTokens(json.NewDecoder(strings.NewReader(body)), "")
	if key != wantKey || where != wantWhere || found != wantFound {
		t.Errorf("%q: duplicateKey = %q, %q, %v; the decoder's tokens say %q, %q, %v", body, key, where, found, wantKey, wantWhere, wantFound)
	}
}

func TestDuplicateKeyAgreesWithTheDecodersTokens(t *testing.T) {
	found := 0
	for _, body := range duplicateKeySeeds {
		checkDuplicateKey(t, body)
		if _, _, ok := duplicateKey([]byte(body)); ok {
			found++
		}
	}
	if found < 10 {
		t.Errorf("only %d seeds hold a duplicate: the check proves little", found)
	}
	key, where, ok := duplicateKey([]byte(`{"messages":[{"role":"user"},{"content":[{"type":"text","type":"x"}]}]}`))
	if !ok || key != "type" || where != "messages[1].content[0]" {
		t.Errorf("duplicateKey = %q, %q, %v", key, where, ok)
	}
}

// FuzzDuplicateKey checks duplicateKey against the decoder's tokens on
// arbitrary valid JSON.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range duplicateKeySeeds {
		f.Add(s)
	}
	f.Fuzz(checkDuplicateKey)
}

func BenchmarkDuplicateKey(b *testing.B) {
	body := []byte(`{"model":"mock-chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":64,"temperature":0.2}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, found := duplicateKey(body); found {
			b.Fatal("found a duplicate")
		}
	}
}
