package mock

import (
	"encoding/json"
	"math"
	"strings"
)

// maxSchemaDepth bounds how deep instance generation follows nested and
// referenced schemas, so that a recursive schema cannot loop.
const maxSchemaDepth = 16

// instance builds a deterministic JSON value valid against a JSON Schema:
// const, the first enum value, or a value of the schema's (first non-null)
// type honouring the usual bounds (minimum, exclusiveMinimum, maximum,
// minLength, maxLength, minItems); an object gets its required properties.
// The first branch of anyOf and oneOf is taken, allOf's branches are merged,
// and local references ("#/$defs/…") are followed.
type instance struct {
	root  map[string]any
	words []string
	seed  uint64
}

// generate returns a value valid against schema, the raw JSON Schema.
func generate(schema json.RawMessage, words []string, seed uint64) (any, error) {
	var root map[string]any
	if len(schema) > 0 {
		if err := json.Unmarshal(schema, &root); err != nil {
			return nil, err
		}
	}
	g := instance{root: root, words: words, seed: seed}
	return g.value(root, 0), nil
}

func (g *instance) word() string {
	return g.words[splitmix(&g.seed)%uint64(len(g.words))]
}

func (g *instance) value(s map[string]any, depth int) any {
	if s == nil || depth > maxSchemaDepth {
		return map[string]any{}
	}
	if ref, ok := s["$ref"].(string); ok {
		return g.value(g.resolve(ref), depth+1)
	}
	if v, ok := s["const"]; ok {
		return v
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if branches, ok := s[key].([]any); ok && len(branches) > 0 {
			for _, b := range branches {
				if bs, ok := b.(map[string]any); ok && bs["type"] != "null" {
					return g.value(bs, depth+1)
				}
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		merged := map[string]any{}
		for _, b := range all {
			if bs, ok := b.(map[string]any); ok {
				mergeSchema(merged, bs)
			}
		}
		rest := map[string]any{}
		mergeSchema(rest, s)
		delete(rest, "allOf")
		mergeSchema(merged, rest)
		return g.value(merged, depth+1)
	}
	switch schemaType(s) {
	case "string":
		return g.str(s)
	case "integer":
		return math.Round(number(s, true))
	case "number":
		return number(s, false)
	case "boolean":
		return false
	case "null":
		return nil
	case "array":
		items, _ := s["items"].(map[string]any)
		n := int(num(s["minItems"], 0))
		out := make([]any, 0, n)
		for range n {
			out = append(out, g.value(items, depth+1))
		}
		return out
	}
	obj := map[string]any{}
	props, _ := s["properties"].(map[string]any)
	required, _ := s["required"].([]any)
	for _, r := range required {
		name, ok := r.(string)
		if !ok {
			continue
		}
		ps, _ := props[name].(map[string]any)
		if ps == nil {
			ps = map[string]any{"type": "string"}
		}
		obj[name] = g.value(ps, depth+1)
	}
	return obj
}

// schemaType is the schema's type, or its first non-null type, or what its
// keywords imply.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if name, ok := x.(string); ok && name != "null" {
				return name
			}
		}
		return "null"
	}
	switch {
	case s["properties"] != nil || s["required"] != nil:
		return "object"
	case s["items"] != nil:
		return "array"
	}
	return "object"
}

func (g *instance) str(s map[string]any) string {
	var v string
	switch s["format"] {
	case "uri", "url":
		v = "https://example.com/" + g.word()
	case "email":
		v = g.word() + "@example.com"
	case "date-time":
		v = "2026-01-01T00:00:00Z"
	case "date":
		v = "2026-01-01"
	case "uuid":
		v = "00000000-0000-4000-8000-000000000000"
	default:
		v = g.word()
	}
	if lo := int(num(s["minLength"], 0)); len(v) < lo {
		v += strings.Repeat("x", lo-len(v))
	}
	if hi, ok := s["maxLength"].(float64); ok && len(v) > int(hi) {
		v = v[:int(hi)]
	}
	return v
}

// number picks the smallest allowed value at or above zero, or the largest
// allowed one when the maximum is below zero.
func number(s map[string]any, integer bool) float64 {
	step := 0.5
	if integer {
		step = 1
	}
	v := 0.0
	if lo, ok := s["minimum"].(float64); ok {
		v = lo
		if integer {
			v = math.Ceil(lo)
		}
	}
	if lo, ok := s["exclusiveMinimum"].(float64); ok && v <= lo {
		v = lo + step
		if integer {
			v = math.Floor(lo) + 1
		}
	}
	if hi, ok := s["maximum"].(float64); ok && v > hi {
		v = hi
		if integer {
			v = math.Floor(hi)
		}
	}
	if hi, ok := s["exclusiveMaximum"].(float64); ok && v >= hi {
		v = hi - step
		if integer {
			v = math.Ceil(hi) - 1
		}
	}
	return v
}

func num(v any, def float64) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	return def
}

// resolve follows a local reference such as "#/$defs/Item".
func (g *instance) resolve(ref string) map[string]any {
	path, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	var cur any = g.root
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if part == "" {
			continue
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	m, _ := cur.(map[string]any)
	return m
}

// mergeSchema copies src's keywords into dst, joining required lists and
// property maps.
func mergeSchema(dst, src map[string]any) {
	for k, v := range src {
		switch k {
		case "required":
			old, _ := dst[k].([]any)
			add, _ := v.([]any)
			dst[k] = append(append([]any{}, old...), add...)
		case "properties":
			old, _ := dst[k].(map[string]any)
			merged := map[string]any{}
			for name, p := range old {
				merged[name] = p
			}
			if add, ok := v.(map[string]any); ok {
				for name, p := range add {
					merged[name] = p
				}
			}
			dst[k] = merged
		default:
			dst[k] = v
		}
	}
}
