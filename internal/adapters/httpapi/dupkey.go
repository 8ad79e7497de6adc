package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// duplicateKey returns the first key that appears twice in one object of
// body, which must hold valid JSON, in the order the keys are written, with
// the path of that object ("the top-level object", "messages[0]").
//
// It reads body in place instead of through a json.Decoder's tokens: keys
// are compared as slices of body (decoded only when they hold an escape or
// a byte outside ASCII, as the decoder would decode them), and the path is
// built only for the duplicate it reports. Every request body passes here.
func duplicateKey(body []byte) (key, where string, found bool) {
	s := keyScanners.Get().(*keyScanner)
	defer s.release()
	s.data = body
	if !s.value() {
		return "", "", false
	}
	var b strings.Builder
	for _, step := range s.path {
		if step.index >= 0 {
			b.WriteString("[" + strconv.Itoa(step.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(step.key)
	}
	if b.Len() == 0 { // the top level, or a path of empty keys
		return string(s.dup), "the top-level object", true
	}
	return string(s.dup), b.String(), true
}

// smallObject is how many keys an object may have before its keys are
// looked up in a map instead of compared one by one.
const smallObject = 16

// keyScanner walks a valid JSON document looking for a repeated key.
type keyScanner struct {
	data []byte
	pos  int
	keys [][]byte   // the keys read so far of the objects being read, innermost last
	path []pathStep // where the value being read is
	dup  []byte     // the repeated key, once found
}

// keyScanners keep the scanners' lists of keys and steps from one body to
// the next; each starts with room for the keys and the depth of a usual
// request.
var keyScanners = sync.Pool{New: func() any {
	return &keyScanner{keys: make([][]byte, 0, 16), path: make([]pathStep, 0, 8)}
}}

// release empties s, so that it refers to no body, and returns it to
// keyScanners unless a body made its lists outgrow smallLists.
func (s *keyScanner) release() {
	if cap(s.keys) > smallLists || cap(s.path) > smallLists {
		return
	}
	clear(s.keys[:cap(s.keys)])
	clear(s.path[:cap(s.path)])
	*s = keyScanner{keys: s.keys[:0], path: s.path[:0]}
	keyScanners.Put(s)
}

// smallLists bounds the lists of a scanner kept for reuse.
const smallLists = 1024

// pathStep is one step of a path: a key, or an array index (≥ 0).
type pathStep struct {
	key   []byte
	index int
}

func (s *keyScanner) space() { s.pos = skipSpace(s.data, s.pos) }

// skipSpace returns the offset of the first byte of data at or after pos
// that is not JSON white space.
func skipSpace(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ' ', '\t', '\r', '\n':
			pos++
		default:
			return pos
		}
	}
	return pos
}

// skipString returns the offset just past the string of data that starts
// at pos, or the end of data when the string does not end.
func skipString(data []byte, pos int) int {
	pos++ // '"'
	for pos < len(data) {
		switch data[pos] {
		case '\\':
			pos += 2
			continue
		case '"':
			return pos + 1
		}
		pos++
	}
	return len(data)
}

// skipLiteral returns the offset just past the number, true, false or null
// of data that starts at pos.
func skipLiteral(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ',', ']', '}', ' ', '\t', '\r', '\n':
			return pos
		}
		pos++
	}
	return pos
}

// value reads one value and reports whether a repeated key was found in it.
func (s *keyScanner) value() bool {
	s.space()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		s.str()
		return false
	}
	s.pos = skipLiteral(s.data, s.pos)
	return false
}

func (s *keyScanner) object() bool {
	s.pos++ // '{'
	start := len(s.keys)
	var many map[string]struct{}
	for {
		s.space()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case '}':
			s.pos++
			s.keys = s.keys[:start]
			return false
		case ',':
			s.pos++
			continue
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		if s.seen(key, start, &many) {
			s.dup = key
			return true
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.path = append(s.path, pathStep{key: key, index: -1})
		if s.value() {
			return true // the path stays where the repeated key was found
		}
		s.path = s.path[:len(s.path)-1]
	}
}

// seen reports whether key was read before in the object whose keys start
// at start, and remembers it; past smallObject keys, many holds them.
func (s *keyScanner) seen(key []byte, start int, many *map[string]struct{}) bool {
	if *many != nil {
		if _, dup := (*many)[string(key)]; dup {
			return true
		}
		(*many)[string(key)] = struct{}{}
		return false
	}
	for _, k := range s.keys[start:] {
		if bytes.Equal(k, key) {
			return true
		}
	}
	s.keys = append(s.keys, key)
	if len(s.keys)-start > smallObject {
		*many = make(map[string]struct{}, 2*smallObject)
		for _, k := range s.keys[start:] {
			(*many)[string(k)] = struct{}{}
		}
	}
	return false
}

func (s *keyScanner) array() bool {
	s.pos++ // '['
	for i := 0; ; {
		s.space()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ']':
			s.pos++
			return false
		case ',':
			s.pos++
			i++
			continue
		}
		s.path = append(s.path, pathStep{index: i})
		if s.value() {
			return true
		}
		s.path = s.path[:len(s.path)-1]
	}
}

// str skips a string and returns it with its quotes.
func (s *keyScanner) str() []byte {
	start := s.pos
	s.pos = skipString(s.data, s.pos)
	return s.data[start:s.pos]
}

// key reads an object's key: its bytes, decoded as encoding/json decodes
// them when they hold an escape or anything outside ASCII (invalid UTF-8
// becomes U+FFFD).
func (s *keyScanner) key() ([]byte, bool) {
	if s.data[s.pos] != '"' {
		return nil, false
	}
	quoted := s.str()
	if len(quoted) < 2 {
		return nil, false
	}
	raw := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(raw, '\\') < 0 && !hasNonASCII(raw) {
		return raw, true
	}
	var decoded string
	if json.Unmarshal(quoted, &decoded) != nil {
		return nil, false
	}
	return []byte(decoded), true
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}
