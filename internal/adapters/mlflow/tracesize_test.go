package mlflow

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tricky strings for the JSON size: escapes short and long, HTML
// characters, U+2028, invalid UTF-8, multi-byte runes, a NUL (truncate
// removes it), and values past the metadata's 250 characters.
var jsonTricky = []string{"", "plain", `q"uo\te`, "\b\f\n\r\t\x01\x1f\x7f", "<a href='x'>&amp;</a>", "line\u2028sep\u2029",
	"bad \xff\xfe utf8 \xe2\x82", "héllo wörld 日本語 🎉", "nul\x00byte", strings.Repeat("é<", 300), strings.Repeat("x", 9000)}

func TestTraceInfoSizeIsTheLengthOfItsJSON(t *testing.T) {
	for i, a := range jsonTricky {
		for j, b := range jsonTricky {
			info := traceInfoRow{RequestID: "tr-" + strconv.Itoa(i), ExperimentID: int64(i * 1000), TimestampMS: 1_767_225_600_123 + int64(j),
				ExecutionTimeMS: int64(i * j * 7), Status: "OK", ClientRequestID: a, RequestPreview: b, ResponsePreview: a}
			meta := []metaEntry{{"mlflow.traceInputs", a}, {"k" + b, b}, {"tidygate.team", a}, {"k" + b, a}}
			tags := []metaEntry{{"mlflow.traceName", b}, {"empty", ""}, {"tidygate.user", a}, {"tidygate.user", ""}, {a, b}}
			want := len(traceInfoJSON(info, meta, tags))
			if got := traceInfoSize(info, meta, tags); got != want {
				t.Fatalf("strings %d and %d: size %d, the JSON's length %d:\n%s", i, j, got, want, traceInfoJSON(info, meta, tags))
			}
		}
	}
}

func FuzzJSONStringLen(f *testing.F) {
	for _, s := range jsonTricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonStringLen(s); got != len(j) {
			t.Errorf("jsonStringLen(%q) = %d, json.Marshal's length %d (%s)", s, got, len(j), j)
		}
	})
}

// traceInfoJSON is the JSON traceInfoSize measures, built with
// encoding/json: the reference its test compares with.
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
