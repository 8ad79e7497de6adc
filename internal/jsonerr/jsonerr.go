// Package jsonerr explains why encoding/json could not decode a request
// body, in a sentence its sender can act on: where the syntax breaks (byte,
// line and column), or which field has a value of the wrong JSON type. It
// is the one rule for every inbound adapter, which may not import each
// other.
package jsonerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Failure is a decoding failure explained.
type Failure struct {
	// Field is the field whose value has the wrong type, or that the
	// destination does not know, as a dotted path ("limits.rpm"); empty when
	// the failure is the body's as a whole (its syntax, or not an object).
	Field string
	// Message says what is wrong, and where, in one sentence.
	Message string
}

// Explain explains err, which encoding/json returned for body.
func Explain(body []byte, err error) Failure {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return Failure{Message: fmt.Sprintf("invalid JSON at %s: %s", Position(body, int(syntax.Offset)-1), syntax.Error())}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Failure{Message: fmt.Sprintf("invalid JSON: the body ends at %s before the JSON object does", Position(body, len(body)))}
	case errors.As(err, &typ) && typ.Field == "":
		return Failure{Message: "the request body must be a JSON object"}
	case errors.As(err, &typ):
		return Failure{Field: typ.Field, Message: fmt.Sprintf("invalid type for '%s': expected %s, got %s",
			typ.Field, typeName(typ.Type), typ.Value)}
	}
	// Decoder.DisallowUnknownFields reports a field it does not know only
	// in its message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return Failure{Field: field, Message: fmt.Sprintf("unknown field %s", name)}
	}
	return Failure{Message: "invalid JSON: " + err.Error()}
}

// Position describes byte offset off of body as "byte offset N (line L,
// column C)".
func Position(body []byte, off int) string {
	off = min(max(off, 0), len(body))
	line := 1 + bytes.Count(body[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(body[:off], '\n')
	return fmt.Sprintf("byte offset %d (line %d, column %d)", off, line, col)
}

// typeName names the JSON type that decodes into t.
func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
