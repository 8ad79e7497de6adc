package httpapi

import (
	"encoding/json"
	"testing"
)

// unquoteJSONSeeds are JSON strings with and without what sends unquoteJSON
// to json.Unmarshal: escapes, control characters, invalid UTF-8.
var unquoteJSONSeeds = []string{
	`""`, `"Say hello."`, `"héllo, 世界"`, `"a\"b"`, `"line\nbreak"`, `"\u00e9\ud83d\ude00"`,
	`"tab	inside"`, "\"bad \xff utf-8\"", `"a\/b"`, `"\\"`, `"unterminated`, `not a string`, `"`,
}

// checkUnquoteJSON compares unquoteJSON with json.Unmarshal into a string.
func checkUnquoteJSON(t *testing.T, raw string) {
	var want string
	wantErr := json.Unmarshal([]byte(raw), &want)
	got, err := unquoteJSON([]byte(raw))
	if (err != nil) != (wantErr != nil) || got != want {
		t.Fatalf("unquoteJSON(%q) = %q, %v; json.Unmarshal gives %q, %v", raw, got, err, want, wantErr)
	}
}

func TestUnquoteJSONAgreesWithUnmarshal(t *testing.T) {
	for _, s := range unquoteJSONSeeds {
		checkUnquoteJSON(t, s)
	}
}

// FuzzUnquoteJSON checks unquoteJSON against json.Unmarshal on any input.
func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range unquoteJSONSeeds {
		f.Add(s)
	}
	f.Fuzz(checkUnquoteJSON)
}
