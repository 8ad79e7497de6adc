package jsonerr_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/jsonerr"
)

type limits struct {
	RPM *int `json:"rpm"`
}

type request struct {
	User   string   `json:"user"`
	Models []string `json:"allowed_models"`
	Limits *limits  `json:"limits"`
	Budget string   `json:"daily_budget_usd"`
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, message string
	}{
		{"syntax", "{\n  \"user\": nope}", "", `invalid JSON at byte offset 13 (line 2, column 12): invalid character 'o' in literal null (expecting 'u')`},
		{"cut short", `{"user": "a"`, "", `invalid JSON: the body ends at byte offset 12 (line 1, column 13) before the JSON object does`},
		{"not an object", `[1]`, "", `the request body must be a JSON object`},
		{"a number for a string", `{"daily_budget_usd": 5}`, "daily_budget_usd", `invalid type for 'daily_budget_usd': expected a string, got number`},
		{"a string for an array", `{"allowed_models": "x"}`, "allowed_models", `invalid type for 'allowed_models': expected an array, got string`},
		{"nested", `{"limits": {"rpm": 1.5}}`, "limits.rpm", `invalid type for 'limits.rpm': expected an integer, got number 1.5`},
		{"a string for an object", `{"limits": "x"}`, "limits", `invalid type for 'limits': expected an object, got string`},
		{"unknown", `{"colour": "red"}`, "colour", `unknown field "colour"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
			dec.DisallowUnknownFields()
			var v request
			err := dec.Decode(&v)
			if err == nil {
				t.Fatal("decoded")
			}
			f := jsonerr.Explain([]byte(tc.body), err)
			if f.Field != tc.field || f.Message != tc.message {
				t.Errorf("Explain = %+v; want field %q, message %q", f, tc.field, tc.message)
			}
			if strings.Contains(f.Message, "Go") || strings.Contains(f.Message, "jsonerr_test") {
				t.Errorf("the message names Go's types: %q", f.Message)
			}
		})
	}
}
