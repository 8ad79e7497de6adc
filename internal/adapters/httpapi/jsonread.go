package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// jsonReader reads a JSON document that json.Valid has accepted into this
// package's wire types without reflection, for the shapes requests usually
// have. It never guesses: anything whose decoding by json.Unmarshal it does
// not reproduce exactly (a value of another type than the field's, a key
// that matches a field only case-insensitively, a key written with escapes
// or outside ASCII, a field given twice, a number beyond its reach) makes
// it give up, and its caller decodes the body with json.Unmarshal instead.
//
// Strings are copied out of the document; json.RawMessage values refer to
// it, so the document must not change while they are in use (a request
// body is the call's own copy).
type jsonReader struct {
	data   []byte
	pos    int
	failed bool
}

// fail gives up on the document.
func (d *jsonReader) fail() { d.failed = true }

func (d *jsonReader) space() { d.pos = skipSpace(d.data, d.pos) }

// peek returns the first byte of the next value, or 0 at the end.
func (d *jsonReader) peek() byte {
	d.space()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// null reads a null, if the next value is one.
func (d *jsonReader) null() bool {
	if d.peek() != 'n' {
		return false
	}
	d.pos += len("null")
	return true
}

// raw returns the next value as it is written, and skips it.
func (d *jsonReader) raw() []byte {
	d.space()
	start := d.pos
	switch d.peek() {
	case '"':
		d.str()
	case '{', '[':
		for depth := 0; d.pos < len(d.data); {
			switch d.data[d.pos] {
			case '"':
				d.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			d.pos++
			if depth == 0 {
				return d.data[start:d.pos]
			}
		}
	default: // a number, true, false or null
		d.pos = skipLiteral(d.data, d.pos)
	}
	return d.data[start:d.pos]
}

// str skips a string and returns it with its quotes.
func (d *jsonReader) str() []byte {
	start := d.pos
	d.pos = skipString(d.data, d.pos)
	return d.data[start:d.pos]
}

// object starts reading an object; false (and the reader failed) when the
// next value is not one.
func (d *jsonReader) object() bool {
	if d.peek() != '{' {
		d.fail()
		return false
	}
	d.pos++
	return true
}

// key returns the next key of the object being read, or false at its end
// (or when the reader has failed). Keys are returned as written, without
// their quotes; one with an escape or a byte outside ASCII fails the reader,
// since json.Unmarshal would match it against the fields by rules of its own.
func (d *jsonReader) key() ([]byte, bool) {
	if d.failed {
		return nil, false
	}
	switch d.peek() {
	case ',':
		d.pos++
		d.space()
	case '}':
		d.pos++
		return nil, false
	}
	quoted := d.str()
	d.space()
	d.pos++ // ':'
	k := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(k, '\\') >= 0 || hasNonASCII(k) {
		d.fail()
		return nil, false
	}
	return k, true
}

// element reports whether the array being read has another element to
// read (false at its end, or when the reader has failed).
func (d *jsonReader) element() bool {
	if d.failed {
		return false
	}
	switch d.peek() {
	case ',':
		d.pos++
	case ']':
		d.pos++
		return false
	}
	return true
}

// array starts reading an array; false (and the reader failed) when the
// next value is not one.
func (d *jsonReader) array() bool {
	if d.peek() != '[' {
		d.fail()
		return false
	}
	d.pos++
	return true
}

// unknown skips the value of a key that names no field, unless it would
// name one for json.Unmarshal, which matches keys case-insensitively.
func (d *jsonReader) unknown(key []byte, fields []string) {
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			d.fail()
			return
		}
	}
	d.raw()
}

// once fails the reader when the field numbered bit was read before in the
// object whose fields seen records: json.Unmarshal would merge the two.
func (d *jsonReader) once(seen *uint64, bit uint) {
	if *seen&(1<<bit) != 0 {
		d.fail()
	}
	*seen |= 1 << bit
}

// text reads a string into dst; null leaves dst as it is.
func (d *jsonReader) text(dst *string) {
	switch d.peek() {
	case 'n':
		d.null()
	case '"':
		s, err := unquoteJSON(d.str())
		if err != nil {
			d.fail()
		}
		*dst = s
	default:
		d.fail()
	}
}

// textOf reads a string into dst as text does, as the one of known
// that it equals when there is one, without a copy of its own.
func (d *jsonReader) textOf(dst *string, known []string) {
	if d.peek() == '"' {
		start := d.pos
		quoted := d.str()
		for _, k := range known {
			if len(quoted) == len(k)+2 && string(quoted[1:len(quoted)-1]) == k {
				*dst = k
				return
			}
		}
		d.pos = start
	}
	d.text(dst)
}

// textPtr reads a string into a new *dst; null sets *dst to nil.
func (d *jsonReader) textPtr(dst **string) {
	if d.null() {
		*dst = nil
		return
	}
	s := new(string)
	d.text(s)
	*dst = s
}

// rawMessage reads any value into dst as it is written (null as "null",
// as json.RawMessage keeps it).
func (d *jsonReader) rawMessage(dst *json.RawMessage) { *dst = d.raw() }

// boolean reads true or false into dst; null leaves dst as it is.
func (d *jsonReader) boolean(dst *bool) {
	switch d.peek() {
	case 'n':
		d.null()
	case 't':
		d.pos += len("true")
		*dst = true
	case 'f':
		d.pos += len("false")
		*dst = false
	default:
		d.fail()
	}
}

// boolPtr reads true or false into a new *dst; null sets *dst to nil.
func (d *jsonReader) boolPtr(dst **bool) {
	if d.null() {
		*dst = nil
		return
	}
	b := new(bool)
	d.boolean(b)
	*dst = b
}

// intPtr reads an integer into a new *dst (see integer).
func (d *jsonReader) intPtr(dst **int) { integer(d, dst) }

// int64Ptr reads an integer into a new *dst (see integer).
func (d *jsonReader) int64Ptr(dst **int64) { integer(d, dst) }

// integer reads an integer into a new *dst; null sets *dst to nil. A
// number with a fraction or an exponent, or of more than 18 digits,
// fails the reader.
func integer[T int | int64](d *jsonReader, dst **T) {
	lit, ok := number(d, dst)
	if !ok {
		return
	}
	digits, neg := lit, false
	if digits[0] == '-' {
		digits, neg = digits[1:], true
	}
	if len(digits) == 0 || len(digits) > 18 {
		d.fail()
		return
	}
	var n T
	for _, c := range digits {
		if c < '0' || c > '9' {
			d.fail()
			return
		}
		n = 10*n + T(c-'0')
	}
	if neg {
		n = -n
	}
	*dst = &n
}

// number reads a number for a pointer field, and returns it as written;
// false when it was null (dst is then set to nil) or is not a number
// (the reader then failed).
func number[T any](d *jsonReader, dst **T) ([]byte, bool) {
	if d.null() {
		*dst = nil
		return nil, false
	}
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		d.fail()
		return nil, false
	}
	return d.raw(), true
}

// floatPtr reads a number into a new *dst; null sets *dst to nil.
func (d *jsonReader) floatPtr(dst **float64) {
	lit, ok := number(d, dst)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		d.fail()
		return
	}
	*dst = &f
}

// texts reads an array of strings into dst; null sets dst to nil.
func (d *jsonReader) texts(dst *[]string) {
	if d.null() {
		*dst = nil
		return
	}
	if !d.array() {
		return
	}
	out := []string{}
	for d.element() {
		var s string
		d.text(&s)
		out = append(out, s)
	}
	*dst = out
}

// exactly returns items in a slice of their number, so that items may be
// gathered on the stack first.
func exactly[T any](items []T) []T { return append(make([]T, 0, len(items)), items...) }

// wireFields returns the JSON names of t's fields, which json.Unmarshal
// matches keys against.
func wireFields(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
