package mlflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
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
	total += len(traceInfoJSON(info, meta, tags))
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

// traceInfoJSON returns the JSON of the trace without spans, in the shape of
// MLflow's Trace.to_json(): the size MLflow adds to the spans' for the total.
func traceInfoJSON(info traceInfoRow, meta, tags []metaEntry) []byte {
	type location struct {
		Type             string `json:"type"`
		MlflowExperiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"mlflow_experiment"`
	}
	type infoJSON struct {
		TraceID           string            `json:"trace_id"`
		ClientRequestID   string            `json:"client_request_id,omitempty"`
		TraceLocation     location          `json:"trace_location"`
		RequestPreview    string            `json:"request_preview,omitempty"`
		ResponsePreview   string            `json:"response_preview,omitempty"`
		RequestTime       string            `json:"request_time"`
		ExecutionDuration string            `json:"execution_duration"`
		State             string            `json:"state"`
		TraceMetadata     map[string]string `json:"trace_metadata"`
		Tags              map[string]string `json:"tags"`
	}
	var t struct {
		Info infoJSON `json:"info"`
		Data struct {
			Spans []struct{} `json:"spans"`
		} `json:"data"`
	}
	t.Info = infoJSON{
		TraceID: info.RequestID, ClientRequestID: info.ClientRequestID,
		RequestPreview: info.RequestPreview, ResponsePreview: info.ResponsePreview,
		RequestTime:       time.UnixMilli(info.TimestampMS).UTC().Format("2006-01-02T15:04:05.000Z"),
		ExecutionDuration: strconv.FormatFloat(float64(info.ExecutionTimeMS)/1000, 'f', -1, 64) + "s",
		State:             info.Status,
		TraceMetadata:     make(map[string]string, len(meta)),
		Tags:              make(map[string]string, len(tags)),
	}
	t.Info.TraceLocation.Type = "MLFLOW_EXPERIMENT"
	t.Info.TraceLocation.MlflowExperiment.ExperimentID = strconv.FormatInt(info.ExperimentID, 10)
	for _, m := range meta {
		t.Info.TraceMetadata[m.key] = truncate(m.value, maxMetadataValue)
	}
	for _, m := range tags {
		if m.value != "" {
			t.Info.Tags[m.key] = truncate(m.value, maxTagValue)
		}
	}
	t.Data.Spans = []struct{}{}
	j, err := json.Marshal(t)
	if err != nil { // maps of strings and plain fields always marshal
		return nil
	}
	return j
}
