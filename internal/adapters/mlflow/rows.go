package mlflow

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// rows holds one batch's rows for the bulk-written tables. Field names in
// the JSON tags are MLflow's column names: each table's rows are sent as one
// JSON array and spread into columns by json_to_recordset. An omitted field
// becomes NULL, and a field whose column this MLflow version lacks is ignored.
type rows struct {
	traceInfo    []traceInfoRow
	traceTags    []keyValueRow
	traceMeta    []keyValueRow
	traceMetrics []traceMetricRow
	spans        []spanRow
	spanMetrics  []spanMetricRow
	runs         []runRow
	runTags      []keyValueRow
	params       []keyValueRow
	metrics      []metricRow
	latest       []metricRow
}

// reserve makes room for n calls' trace rows, at the counts a call with
// usage and one provider attempt has, so that a batch's slices are not
// copied over and over as they grow.
func (b *rows) reserve(n int) {
	b.traceInfo = slices.Grow(b.traceInfo, n)
	b.traceTags = slices.Grow(b.traceTags, 7*n)
	b.traceMeta = slices.Grow(b.traceMeta, 28*n)
	b.traceMetrics = slices.Grow(b.traceMetrics, 3*n)
	b.spans = slices.Grow(b.spans, 2*n)
	b.spanMetrics = slices.Grow(b.spanMetrics, 3*n)
}

// tableRows is one table's rows in a batch.
type tableRows struct {
	table string
	n     int
	rows  any
}

// tables returns the rows table by table, parents before children.
func (b *rows) tables() []tableRows {
	return []tableRows{
		{"trace_info", len(b.traceInfo), b.traceInfo},
		{"trace_tags", len(b.traceTags), b.traceTags},
		{"trace_request_metadata", len(b.traceMeta), b.traceMeta},
		{"trace_metrics", len(b.traceMetrics), b.traceMetrics},
		{"spans", len(b.spans), b.spans},
		{"span_metrics", len(b.spanMetrics), b.spanMetrics},
		{"runs", len(b.runs), b.runs},
		{"tags", len(b.runTags), b.runTags},
		{"params", len(b.params), b.params},
		{"metrics", len(b.metrics), b.metrics},
		{"latest_metrics", len(b.latest), b.latest},
	}
}

type traceInfoRow struct {
	RequestID       string `json:"request_id"`
	ExperimentID    int64  `json:"experiment_id"`
	TimestampMS     int64  `json:"timestamp_ms"`
	ExecutionTimeMS int64  `json:"execution_time_ms"`
	Status          string `json:"status"`
	ClientRequestID string `json:"client_request_id,omitempty"` // NULL when the client sent none
	RequestPreview  string `json:"request_preview,omitempty"`
	ResponsePreview string `json:"response_preview,omitempty"`
	// Columns of newer MLflow versions; the token and cost columns are NULL
	// for a call without usage.
	TraceName    string   `json:"trace_name"`
	InputTokens  *int64   `json:"input_tokens,omitempty"`
	OutputTokens *int64   `json:"output_tokens,omitempty"`
	TotalTokens  *int64   `json:"total_tokens,omitempty"`
	InputCost    *float64 `json:"input_cost,omitempty"`
	OutputCost   *float64 `json:"output_cost,omitempty"`
	TotalCost    *float64 `json:"total_cost,omitempty"`
}

// keyValueRow is a row of trace_tags and trace_request_metadata (owned by a
// trace), or of tags and params (owned by a run).
type keyValueRow struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	RequestID string `json:"request_id,omitempty"`
	RunUUID   string `json:"run_uuid,omitempty"`
}

type traceMetricRow struct {
	RequestID string  `json:"request_id"`
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
}

type spanRow struct {
	TraceID             string          `json:"trace_id"`
	ExperimentID        int64           `json:"experiment_id"`
	SpanID              string          `json:"span_id"`
	ParentSpanID        string          `json:"parent_span_id,omitempty"`
	Name                string          `json:"name"`
	Type                string          `json:"type"`
	Status              string          `json:"status"`
	StartTimeUnixNano   int64           `json:"start_time_unix_nano"`
	EndTimeUnixNano     int64           `json:"end_time_unix_nano"`
	Content             string          `json:"content"`
	DimensionAttributes json.RawMessage `json:"dimension_attributes,omitempty"`
	// Columns of newer MLflow versions, set on the provider span.
	ModelName     string   `json:"model_name,omitempty"`
	ModelProvider string   `json:"model_provider,omitempty"`
	InputCost     *float64 `json:"input_cost,omitempty"`
	OutputCost    *float64 `json:"output_cost,omitempty"`
	TotalCost     *float64 `json:"total_cost,omitempty"`
}

type spanMetricRow struct {
	TraceID string  `json:"trace_id"`
	SpanID  string  `json:"span_id"`
	Key     string  `json:"key"`
	Value   float64 `json:"value"`
}

type runRow struct {
	RunUUID        string `json:"run_uuid"`
	Name           string `json:"name"`
	SourceType     string `json:"source_type"`
	SourceName     string `json:"source_name"`
	EntryPointName string `json:"entry_point_name"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        int64  `json:"end_time"`
	SourceVersion  string `json:"source_version"`
	LifecycleStage string `json:"lifecycle_stage"`
	ArtifactURI    string `json:"artifact_uri"`
	ExperimentID   int64  `json:"experiment_id"`
}

// metricRow is a row of metrics or latest_metrics.
type metricRow struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
	IsNaN     bool    `json:"is_nan"`
	RunUUID   string  `json:"run_uuid"`
}

// columnValues turns rows, a slice of one of the row structs above, into
// the values of cols for COPY, with the JSON path's meaning: a column is
// the field whose JSON tag names it, and an omitted field (omitempty and
// empty, or a nil pointer) is NULL.
func columnValues(rows any, cols []string) ([][]any, error) {
	v := reflect.ValueOf(rows)
	if v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("rows of type %T are not a slice of structs", rows)
	}
	fields, err := columnFields(v.Type().Elem(), cols)
	if err != nil {
		return nil, err
	}
	out := make([][]any, v.Len())
	for i := range out {
		row := v.Index(i)
		values := make([]any, len(fields))
		for j, f := range fields {
			values[j] = columnValue(row.Field(f.index), f.omitEmpty)
		}
		out[i] = values
	}
	return out, nil
}

// columnField is where a column's value is in a row struct.
type columnField struct {
	index     int
	omitEmpty bool
}

// columnFields finds each column's field in the row struct t.
func columnFields(t reflect.Type, cols []string) ([]columnField, error) {
	byName := map[string]columnField{}
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		byName[name] = columnField{index: i, omitEmpty: strings.Contains(opts, "omitempty")}
	}
	fields := make([]columnField, len(cols))
	for i, c := range cols {
		f, ok := byName[c]
		if !ok {
			return nil, fmt.Errorf("%s has no field for column %s", t, c)
		}
		fields[i] = f
	}
	return fields, nil
}

func columnValue(f reflect.Value, omitEmpty bool) any {
	switch {
	case f.Kind() == reflect.Pointer && f.IsNil():
		return nil
	case f.Kind() == reflect.Pointer:
		return f.Elem().Interface()
	case omitEmpty && f.IsZero(), f.Kind() == reflect.Slice && f.Len() == 0:
		return nil
	case f.Type() == reflect.TypeFor[json.RawMessage]():
		return []byte(f.Bytes()) // a json column's value, as it is
	}
	return f.Interface()
}
