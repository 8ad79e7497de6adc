package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// fuzzBodyLimit is small so that fuzzing reaches the 413 path too.
const fuzzBodyLimit = 4096

// FuzzDecodeChatRequest checks that any body decodes into a chat request
// whose validation (the gateway's) cannot fail but as invalid, or is refused
// as invalid (400 or 413). Seeds: testdata/fuzz.
func FuzzDecodeChatRequest(f *testing.F) {
	fuzzDecoder(f, decodeChat, func(in chatInput) error {
		if in.includeUsage && !in.req.Stream {
			return errors.New("include_usage without a stream")
		}
		return onlyInvalid(in.req.Validate())
	})
}

// onlyInvalid passes a validation that succeeded or found the request
// invalid: decoding leaves meaning to the gateway, but must not hand it
// anything its validation could fail on otherwise.
func onlyInvalid(err error) error {
	if err == nil || domain.KindOf(err) == domain.KindInvalid {
		return nil
	}
	return err
}

// FuzzDecodeEmbedRequest checks that any body decodes into an embeddings
// request or is refused as invalid (400 or 413), as FuzzDecodeChatRequest
// does. Seeds: testdata/fuzz.
func FuzzDecodeEmbedRequest(f *testing.F) {
	fuzzDecoder(f, decodeEmbed, func(in embedInput) error { return onlyInvalid(in.req.Validate()) })
}

// fuzzDecoder runs arbitrary bodies through readBody and decode: each must
// either pass check or be refused as invalid.
func fuzzDecoder[T any](f *testing.F, decode func([]byte) (T, error), check func(T) error) {
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		b, err := readBody(httptest.NewRecorder(), req, fuzzBodyLimit)
		var in T
		if err == nil {
			in, err = decode(b)
		}
		if err == nil {
			if err := check(in); err != nil {
				t.Fatalf("body %q: decoded a request that is not valid: %v", body, err)
			}
			return
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid {
			t.Fatalf("body %q: error %v is not a KindInvalid *domain.Error", body, err)
		}
		if p := problemOf(err, "id"); (p.status != http.StatusBadRequest && p.status != http.StatusRequestEntityTooLarge) || p.message == "" {
			t.Fatalf("body %q: refused with %d %q", body, p.status, p.message)
		}
	})
}

// TestDecodeEmbedInputShapes decodes input in each shape OpenAI's API
// takes: a string and an array of strings as text, an array of token ids
// as one token input, an array of arrays of them as one input each.
func TestDecodeEmbedInputShapes(t *testing.T) {
	for _, tc := range []struct {
		input  string
		texts  []string
		tokens [][]int
	}{
		{`"a"`, []string{"a"}, nil},
		{`["a","b"]`, []string{"a", "b"}, nil},
		{`[1, 2, 3]`, nil, [][]int{{1, 2, 3}}},
		{`[ [1,2] , [3] ]`, nil, [][]int{{1, 2}, {3}}},
		{`[[0, 2147483647]]`, nil, [][]int{{0, 1<<31 - 1}}},
	} {
		in, err := decodeEmbed([]byte(`{"model":"e","input":` + tc.input + `}`))
		if err != nil {
			t.Errorf("%s: %v", tc.input, err)
			continue
		}
		if !reflect.DeepEqual(in.req.Inputs, tc.texts) || !reflect.DeepEqual(in.req.Tokens, tc.tokens) {
			t.Errorf("%s: texts %q, tokens %v; want %q, %v", tc.input, in.req.Inputs, in.req.Tokens, tc.texts, tc.tokens)
		}
		if err := in.req.Validate(); err != nil {
			t.Errorf("%s: %v", tc.input, err)
		}
	}
}

func TestDecodeJSONPositions(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"{\n  \"a\": 1,\n  \"b\": x\n}", "byte offset 19 (line 3, column 8)"},
		{`{"a":`, "ends at byte offset 5 (line 1, column 6)"},
		{"{}\n\n  ]", "after the JSON object at byte offset 6 (line 3, column 3)"},
	} {
		var v struct{}
		err := decodeJSON([]byte(tc.body), &v)
		if err == nil || !regexp.MustCompile(regexp.QuoteMeta(tc.want)).MatchString(err.Error()) {
			t.Errorf("%q: error %v, want it to name %q", tc.body, err, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", -time.Second: "0", time.Millisecond: "1", 1500 * time.Microsecond: "1.5",
		1234567 * time.Nanosecond: "1.235", 1999999 * time.Nanosecond: "2", 2*time.Second + 10*time.Microsecond: "2000.01",
	} {
		if got := formatMillis(d); got != want {
			t.Errorf("formatMillis(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 59500 * time.Millisecond: "60",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %q, want %q", d, got, want)
		}
	}
	for m, want := range map[domain.Micros]string{
		0: "0.000000", 1: "0.000001", 1_250: "0.001250", 12_500_000: "12.500000", -3: "-0.000003",
	} {
		if got := usd(m); got != want {
			t.Errorf("usd(%d) = %q, want %q", m, got, want)
		}
	}
}

func TestNewRequestIDIsTimeOrderedAndUnique(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	a, b := newRequestID(at), newRequestID(at)
	later := newRequestID(at.Add(time.Millisecond))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) || a == b || a[:12] != "018bcfe5687b" || later[:12] <= a[:12] {
		t.Errorf("ids %q, %q, %q", a, b, later)
	}
	if !validRequestID(a) {
		t.Errorf("a generated id %q is not a valid request id", a)
	}
}
