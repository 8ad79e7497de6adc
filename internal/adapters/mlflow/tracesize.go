package mlflow

import (
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// traceSize is what MLflow records about a trace's size in the metadata
// mlflow.trace.sizeStats (and, for older readers, its total alone in
// mlflow.trace.sizeBytes): the bytes of the trace's JSON, the number of
// spans, and the largest span's and the quartiles' bytes. MLflow drops a
// trace from batch reads when num_spans exceeds the spans stored, so it must
// count exactly the spans written.
type traceSize struct {
	total, spans, largest, p25, p50, p75 int
}

// json returns the sizeStats value, keys in MLflow's order and spaced as
// Python's json.dumps writes them.
func (s traceSize) json() string {
	return fmt.Sprintf(`{"total_size_bytes": %d, "num_spans": %d, "max": %d, "p25": %d, "p50": %d, "p75": %d}`,
		s.total, s.spans, s.largest, s.p25, s.p50, s.p75)
}

// sizeStats computes a trace's size as MLflow does: each span's JSON
// (spans.content), plus the trace's JSON without its spans (the trace info
// with its metadata and tags, as stored), plus the ", " between spans. Like
// MLflow, it leaves the size metadata itself out.
func sizeStats(spans []spanRow, info traceInfoRow, meta, tags []metaEntry) traceSize {
	sizes := make([]int, len(spans))
	total := 0
	for i, s := range spans {
		sizes[i] = len(s.Content)
		total += sizes[i]
	}
	if len(sizes) > 1 {
		total += 2 * (len(sizes) - 1)
	}
	total += traceInfoSize(info, meta, tags)
	slices.Sort(sizes)
	st := traceSize{total: total, spans: len(sizes)}
	if len(sizes) > 0 {
		st.largest = sizes[len(sizes)-1]
		st.p25, st.p50, st.p75 = percentile(sizes, 0.25), percentile(sizes, 0.5), percentile(sizes, 0.75)
	}
	return st
}

// percentile interpolates linearly between the nearest ranks of sorted,
// truncating the result to an integer, as MLflow does.
func percentile(sorted []int, p float64) int {
	n := len(sorted)
	index := p * float64(n-1)
	lower := int(index)
	if lower+1 >= n {
		return sorted[n-1]
	}
	weight := index - float64(lower)
	return int(float64(sorted[lower])*(1-weight) + float64(sorted[lower+1])*weight)
}

// traceInfoSize returns the length of the JSON of the trace without
// spans, in the shape of MLflow's Trace.to_json() as encoding/json writes
// it (HTML characters escaped, json.Marshal's default): the size MLflow
// adds to the spans' for the total. It counts the bytes without building
// the document:
//
//	{"info":{"trace_id":…,"client_request_id":… (when set),
//	"trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"7"}},
//	"request_preview":…,"response_preview":… (when set),"request_time":…,
//	"execution_duration":"0.9s","state":…,"trace_metadata":{…},"tags":{…}},"data":{"spans":[]}}
func traceInfoSize(info traceInfoRow, meta, tags []metaEntry) int {
	n := len(`{"info":{"trace_id":`) + jsonStringLen(info.RequestID)
	if info.ClientRequestID != "" {
		n += len(`,"client_request_id":`) + jsonStringLen(info.ClientRequestID)
	}
	n += len(`,"trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":`) +
		jsonStringLen(strconv.FormatInt(info.ExperimentID, 10)) + len(`}}`)
	if info.RequestPreview != "" {
		n += len(`,"request_preview":`) + jsonStringLen(info.RequestPreview)
	}
	if info.ResponsePreview != "" {
		n += len(`,"response_preview":`) + jsonStringLen(info.ResponsePreview)
	}
	n += len(`,"request_time":`) + jsonStringLen(time.UnixMilli(info.TimestampMS).UTC().Format("2006-01-02T15:04:05.000Z"))
	n += len(`,"execution_duration":`) + jsonStringLen(strconv.FormatFloat(float64(info.ExecutionTimeMS)/1000, 'f', -1, 64)+"s")
	n += len(`,"state":`) + jsonStringLen(info.Status)
	n += len(`,"trace_metadata":`) + jsonMapLen(meta, maxMetadataValue, false)
	n += len(`,"tags":`) + jsonMapLen(tags, maxTagValue, true)
	return n + len(`},"data":{"spans":[]}}`)
}

// jsonMapLen returns the length of the JSON object of the entries, each
// value truncated to limit, empty values left out when skipEmpty is set;
// as in a map, a key given twice holds its last value.
func jsonMapLen(entries []metaEntry, limit int, skipEmpty bool) int {
	n, count := len("{}"), 0
	for i, e := range entries {
		if skipEmpty && e.value == "" || slices.ContainsFunc(entries[i+1:], func(later metaEntry) bool {
			return later.key == e.key && (!skipEmpty || later.value != "")
		}) {
			continue
		}
		n += jsonStringLen(e.key) + len(":") + jsonStringLen(truncate(e.value, limit))
		count++
	}
	if count > 1 {
		n += count - 1 // the commas
	}
	return n
}

// jsonStringLen returns the length of s as encoding/json writes it: quoted;
// '"', '\\' and the control characters with short escapes (\b \f \n \r
// \t) escaped in two bytes; the other control characters, '<', '>', '&',
// U+2028, U+2029 and each byte of invalid UTF-8 (as U+FFFD) in six.
func jsonStringLen(s string) int {
	n := len(`""`)
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}
