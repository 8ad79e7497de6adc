package mlflow

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/usagewire"
)

// experiment is the MLflow experiment a model's calls are recorded in.
type experiment struct {
	id               int64
	artifactLocation string // e.g. "mlflow-artifacts:/7"
}

// unknownModel stands in for the model of a call rejected before its model
// was resolved, so that made-up model names cannot create experiments.
const unknownModel = "unknown-model"

// modelOf returns the catalogue model a call's trace and run are filed under.
func modelOf(r domain.CallRecord) string {
	if r.Model == "" {
		return unknownModel
	}
	return r.Model
}

// traceIDs are a call's trace and span ids, derived from its request id so
// that delivering a record twice writes the same rows.
type traceIDs struct {
	requestID string
	trace     [16]byte
	root      [8]byte
	first     [8]byte // the first provider attempt's span
}

func newTraceIDs(requestID string) traceIDs {
	h := domain.TraceDigest(requestID)
	ids := traceIDs{requestID: requestID}
	copy(ids.trace[:], h[:16])
	copy(ids.root[:], h[16:24])
	copy(ids.first[:], h[24:32])
	return ids
}

// traceID returns MLflow's trace id: "tr-" and 32 hex digits.
func (ids traceIDs) traceID() string { return domain.TraceID(ids.requestID) }

// attemptSpan returns the span id of the i-th provider attempt (from 0).
func (ids traceIDs) attemptSpan(i int) [8]byte {
	if i == 0 {
		return ids.first
	}
	h := sha256.Sum256([]byte("tidygate span " + ids.requestID + " " + strconv.Itoa(i)))
	var id [8]byte
	copy(id[:], h[:8])
	return id
}

// MLflow's trace and span status names.
const (
	statusOK    = "OK"
	statusError = "ERROR"
)

// MLflow's span types (mlflow.entities.SpanType) that tidygate's spans use:
// the root span is untyped, as the root of MLflow's gateway traces is, and
// each provider call is an LLM span.
const (
	spanTypeUnknown = "UNKNOWN"
	spanTypeLLM     = "LLM"
)

// maxMetadataValue is the longest trace metadata value every MLflow storage
// backend keeps (MAX_CHARS_IN_TRACE_INFO_METADATA). tidygate cuts longer
// values there and keeps them whole in the root span's attributes.
const maxMetadataValue = 250

// maxClientRequestID is the width of trace_info.client_request_id.
const maxClientRequestID = 50

// tokenUsage and costUSD are the JSON MLflow keeps in the trace metadata
// (mlflow.trace.tokenUsage, mlflow.trace.cost) and in the provider span's
// attributes (mlflow.chat.tokenUsage, mlflow.llm.cost), under MLflow's own
// keys (TokenUsageKey, CostKey). input_tokens counts every input token;
// cache_read_input_tokens and cache_creation_input_tokens are the parts of
// it read from and written to the provider's prompt cache, present (as
// MLflow writes them) only when not zero. Reasoning tokens are part of
// output_tokens; MLflow has no key for them.
type tokenUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	TotalTokens              int `json:"total_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens,omitempty"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens,omitempty"`
}

type costUSD struct {
	InputCost  float64 `json:"input_cost"`
	OutputCost float64 `json:"output_cost"`
	TotalCost  float64 `json:"total_cost"`
}

func usageOf(r domain.CallRecord) tokenUsage {
	c := r.Usage.Classes()
	return tokenUsage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens, TotalTokens: r.Usage.Total(),
		CacheReadInputTokens: c.CacheRead, CacheCreationInputTokens: c.CacheWrite}
}

// metrics are the trace's token metrics (trace_metrics rows), under the
// same keys: the cache classes only when not zero.
func (u tokenUsage) metrics() []traceMetricRow {
	out := []traceMetricRow{{Key: "input_tokens", Value: float64(u.InputTokens)},
		{Key: "output_tokens", Value: float64(u.OutputTokens)}, {Key: "total_tokens", Value: float64(u.TotalTokens)}}
	if u.CacheReadInputTokens > 0 {
		out = append(out, traceMetricRow{Key: "cache_read_input_tokens", Value: float64(u.CacheReadInputTokens)})
	}
	if u.CacheCreationInputTokens > 0 {
		out = append(out, traceMetricRow{Key: "cache_creation_input_tokens", Value: float64(u.CacheCreationInputTokens)})
	}
	return out
}

func costOf(r domain.CallRecord) costUSD {
	return costUSD{InputCost: r.InputCost.USD(), OutputCost: r.OutputCost.USD(), TotalCost: r.Cost().USD()}
}

// hasUsage reports whether a provider reported usage for the call. MLflow
// writes no token usage, cost or trace metrics for a call without any, and
// neither does tidygate: a refused or failed call has none.
func hasUsage(r domain.CallRecord) bool { return r.Usage.Total() > 0 || r.Cost() > 0 }

// clientRequestID returns the client's request id for
// trace_info.client_request_id, where MLflow's search by client request id
// looks; an id longer than the column is left out there and kept whole in
// the metadata (tidygate.client_request_id).
func clientRequestID(r domain.CallRecord) string {
	id := truncate(r.ClientRequestID, 0)
	if utf8.RuneCountInString(id) > maxClientRequestID {
		return ""
	}
	return id
}

// method names the provider call as MLflow's gateway names its provider
// spans' "method" attribute.
func method(r domain.CallRecord) string {
	switch {
	case r.Endpoint == domain.EndpointEmbeddings:
		return "embeddings"
	case r.Endpoint == domain.EndpointCountTokens:
		return "count_tokens"
	case r.Stream:
		return "chat_stream"
	}
	return "chat"
}

// attempt is one provider call of a call, a provider span of its trace.
type attempt struct {
	deployment      string // provider/upstream
	provider, model string
	start, end      time.Time
	failed          bool
	errKind         string
	errMessage      string
}

// attemptsOf returns the provider calls of r in the order they were made.
// A record that lists none (one journaled by an earlier tidygate) but names
// the provider that answered (or failed) has one, lasting as long as
// tidygate waited on providers; a rejected call has none.
func attemptsOf(r domain.CallRecord) []attempt {
	if r.Outcome == domain.OutcomeRejected {
		return nil
	}
	if len(r.Attempts) > 0 {
		out := make([]attempt, len(r.Attempts))
		for i, a := range r.Attempts {
			out[i] = attempt{deployment: cmp.Or(a.Deployment, a.Provider+"/"+a.UpstreamModel), provider: a.Provider, model: a.UpstreamModel,
				start: a.Start, end: a.End, failed: a.Failed}
			if a.Failed {
				out[i].errKind, out[i].errMessage = a.ErrorKind.String(), a.ErrorMessage
			}
		}
		return out
	}
	if r.Provider == "" {
		return nil
	}
	start := r.Start
	if r.ProviderTime > 0 && r.End.Add(-r.ProviderTime).After(r.Start) {
		start = r.End.Add(-r.ProviderTime)
	}
	a := attempt{deployment: r.Provider + "/" + r.UpstreamModel, provider: r.Provider, model: r.UpstreamModel, start: start, end: r.End}
	if r.Outcome != domain.OutcomeOK {
		a.failed, a.errKind, a.errMessage = true, r.ErrorKind.String(), r.ErrorMessage
	}
	return []attempt{a}
}

// metaEntry is one trace metadata value, whole.
type metaEntry struct{ key, value string }

// addTrace appends the rows of c's trace to b: trace_info, its tags,
// metadata and, when a provider reported usage, its token metrics; a root
// span "gateway/<model>" holding the request and the response, and one LLM
// span "provider/<provider>/<upstream model>" per provider attempt, the one
// that answered holding the usage and the cost. A non-empty runID names the
// run the trace belongs to; a non-empty endpointID is written as
// mlflow.gateway.endpointId, which puts the call's cost into the budgets of
// MLflow's own AI gateway.
func (b *rows) addTrace(c call, exp experiment, runID, endpointID string) error {
	r := c.rec
	ids := newTraceIDs(r.RequestID)
	traceID := ids.traceID()
	model := modelOf(r)
	rootName := "gateway/" + model
	status := statusOK
	if r.Outcome != domain.OutcomeOK {
		status = statusError
	}
	usage, cost := usageOf(r), costOf(r)
	withUsage := hasUsage(r)

	inputs, err := marshalJSON(requestBody(c, r.RequestedModel))
	if err != nil {
		return err
	}
	var outputs string
	if answered(r) {
		if outputs, err = marshalJSON(responseBody(c)); err != nil {
			return err
		}
	}

	info := traceInfoRow{
		RequestID: traceID, ExperimentID: exp.id,
		TimestampMS: r.Start.UnixMilli(), ExecutionTimeMS: r.Duration().Milliseconds(),
		Status: status, ClientRequestID: clientRequestID(r),
		RequestPreview: c.requestPreview, ResponsePreview: c.responsePreview,
		TraceName: truncate(rootName, 0),
	}
	var meta []metaEntry
	add := func(key, value string) {
		if value != "" {
			meta = append(meta, metaEntry{key, value})
		}
	}
	add("mlflow.trace_schema.version", "3")
	add("mlflow.trace.infoFinalized", "true")
	add("mlflow.traceInputs", inputs)
	add("mlflow.traceOutputs", outputs)
	add("mlflow.source.name", "tidygate")
	add("mlflow.source.type", "LOCAL")
	add("mlflow.user", "tidygate")
	if withUsage {
		usageJSON, err := json.Marshal(usage)
		if err != nil {
			return err
		}
		costJSON, err := json.Marshal(cost)
		if err != nil {
			return err
		}
		add("mlflow.trace.tokenUsage", string(usageJSON))
		add("mlflow.trace.cost", string(costJSON))
		in, out, total := int64(usage.InputTokens), int64(usage.OutputTokens), int64(usage.TotalTokens)
		info.InputTokens, info.OutputTokens, info.TotalTokens = &in, &out, &total
		info.InputCost, info.OutputCost, info.TotalCost = &cost.InputCost, &cost.OutputCost, &cost.TotalCost
		for _, m := range usage.metrics() {
			m.RequestID = traceID
			b.traceMetrics = append(b.traceMetrics, m)
		}
	}
	add("mlflow.trace.user", r.User)
	add("mlflow.gateway.endpointId", endpointID)
	add("mlflow.gateway.requestType", requestType(r.Endpoint))
	add("tidygate.endpoint", string(r.Endpoint))
	add("mlflow.sourceRun", runID)
	add("tidygate.request_id", r.RequestID)
	add("tidygate.client_request_id", r.ClientRequestID)
	add("tidygate.team", r.Team)
	add("tidygate.key_id", r.KeyID)
	add("tidygate.audit_reason", r.AuditReason)
	add("tidygate.client_user", r.ClientUser)
	add("tidygate.requested_model", r.RequestedModel)
	add("tidygate.provider", r.Provider)
	add("tidygate.upstream_model", r.UpstreamModel)
	if r.Outcome == domain.OutcomeOK && r.Provider != "" {
		add("tidygate.deployment", r.Provider+"/"+r.UpstreamModel) // the deployment that answered
	}
	add("tidygate.stream", strconv.FormatBool(r.Stream))
	add("tidygate.attempts", strconv.Itoa(c.attempts))
	add("tidygate.fallback_used", strconv.FormatBool(r.FallbackUsed))
	add("tidygate.budget_fallback_from", r.BudgetFallbackFrom)
	add("tidygate.outcome", string(r.Outcome))
	if r.Outcome != domain.OutcomeOK {
		add("tidygate.error_kind", r.ErrorKind.String())
	}
	add("tidygate.error", r.ErrorMessage) // a successful call may carry one too (a failed settlement)
	add("tidygate.interrupted", string(r.Interrupted))
	if r.UsageExceedsReservation {
		add("tidygate.usage_exceeds_reservation", "true")
	}

	tags := []metaEntry{
		{"mlflow.traceName", rootName},
		{"mlflow.artifactLocation", exp.artifactLocation + "/traces/" + traceID + "/artifacts"},
		{"mlflow.trace.spansLocation", "TRACKING_STORE"},
		{"tidygate.model", model},
		{"tidygate.outcome", string(r.Outcome)},
		{"tidygate.user", r.User},
		{"tidygate.team", r.Team},
	}

	// The root span keeps whole what the metadata cuts (the inputs and
	// outputs are its own).
	rootAttrs := map[string]any{
		"mlflow.spanInputs": json.RawMessage(inputs),
		"endpoint_name":     model,
		"endpoint_id":       model,
	}
	if outputs != "" {
		rootAttrs["mlflow.spanOutputs"] = json.RawMessage(outputs)
	}
	if r.Endpoint != domain.EndpointEmbeddings {
		rootAttrs["mlflow.message.format"] = messageFormat(r.Endpoint)
		if len(r.Tools) > 0 {
			rootAttrs["mlflow.chat.tools"] = oaiTools(r.Tools)
		}
	}
	keepLongMetadata(rootAttrs, meta)
	first := len(b.spans)
	root := spanSpec{ids: ids, id: ids.root, name: rootName, spanType: spanTypeUnknown, start: r.Start, end: r.End, attributes: rootAttrs}
	if r.Outcome != domain.OutcomeOK {
		root.failure = &spanFailure{kind: r.ErrorKind.String(), message: r.ErrorMessage}
	}
	if err := b.addSpan(exp, root); err != nil {
		return err
	}
	if err := b.addProviderSpans(exp, r, ids, withUsage); err != nil {
		return err
	}

	b.appendTrace(info, meta, tags, first)
	return nil
}

// keepLongMetadata copies into a root span's attributes the metadata values
// the metadata cuts (all but the inputs and outputs, which are the span's
// own), so that the trace keeps them whole.
func keepLongMetadata(rootAttrs map[string]any, meta []metaEntry) {
	for _, m := range meta {
		if m.key != "mlflow.traceInputs" && m.key != "mlflow.traceOutputs" && utf8.RuneCountInString(m.value) > maxMetadataValue {
			rootAttrs[m.key] = m.value
		}
	}
}

// appendTrace appends a trace's trace_info row, its tags and its metadata,
// completed with the size statistics of its spans (b.spans from first on).
func (b *rows) appendTrace(info traceInfoRow, meta, tags []metaEntry, first int) {
	stats := sizeStats(b.spans[first:], info, meta, tags)
	meta = append(meta, metaEntry{"mlflow.trace.sizeStats", stats.json()}, metaEntry{"mlflow.trace.sizeBytes", strconv.Itoa(stats.total)})
	b.traceInfo = append(b.traceInfo, info)
	for _, t := range tags {
		if t.value != "" {
			b.traceTags = append(b.traceTags, keyValueRow{Key: t.key, Value: truncate(t.value, maxTagValue), RequestID: info.RequestID})
		}
	}
	for _, m := range meta {
		b.traceMeta = append(b.traceMeta, keyValueRow{Key: m.key, Value: truncate(m.value, maxMetadataValue), RequestID: info.RequestID})
	}
}

// addProviderSpans appends one LLM span per provider attempt, children of
// the root span, as MLflow's gateway records each provider call: provider,
// model, method and, for a stream, streaming. The attempt that answered
// carries the usage and the cost, and its cost metrics.
func (b *rows) addProviderSpans(exp experiment, r domain.CallRecord, ids traceIDs, withUsage bool) error {
	attempts := attemptsOf(r)
	usage, cost := usageOf(r), costOf(r)
	for i, a := range attempts {
		id := ids.attemptSpan(i)
		status := "ok"
		if a.failed {
			status = a.errKind
		}
		attrs := map[string]any{
			"mlflow.llm.provider": a.provider,
			"mlflow.llm.model":    a.model,
			"method":              method(r),
			"tidygate.deployment": a.deployment,
			"tidygate.status":     status,
			"tidygate.latency_ms": a.end.Sub(a.start).Milliseconds(),
		}
		if r.Stream {
			attrs["streaming"] = true
		}
		answered := !a.failed && withUsage && i == len(attempts)-1
		if answered {
			attrs["mlflow.chat.tokenUsage"] = usage
			attrs["mlflow.llm.cost"] = cost
		}
		s := spanSpec{ids: ids, id: id, parent: &ids.root, name: "provider/" + a.provider + "/" + a.model,
			spanType: spanTypeLLM, start: a.start, end: a.end, attributes: attrs}
		if a.failed {
			s.failure = &spanFailure{kind: a.errKind, message: a.errMessage}
		}
		if err := b.addSpan(exp, s); err != nil {
			return err
		}
		row := &b.spans[len(b.spans)-1]
		dims, err := json.Marshal(map[string]string{"mlflow.llm.model": a.model, "mlflow.llm.provider": a.provider})
		if err != nil {
			return fmt.Errorf("span %s dimensions: %w", s.name, err)
		}
		row.DimensionAttributes = dims
		row.ModelName, row.ModelProvider = truncate(a.model, 0), truncate(a.provider, 0)
		if !answered {
			continue
		}
		row.InputCost, row.OutputCost, row.TotalCost = &cost.InputCost, &cost.OutputCost, &cost.TotalCost
		traceID, spanID := ids.traceID(), hex.EncodeToString(id[:])
		for _, m := range []struct {
			key   string
			value float64
		}{{"input_cost", cost.InputCost}, {"output_cost", cost.OutputCost}, {"total_cost", cost.TotalCost}} {
			b.spanMetrics = append(b.spanMetrics, spanMetricRow{TraceID: traceID, SpanID: spanID, Key: m.key, Value: m.value})
		}
	}
	return nil
}

// spanSpec describes one span of a call's trace.
type spanSpec struct {
	ids        traceIDs
	id         [8]byte
	parent     *[8]byte // nil for the root span
	name       string
	spanType   string
	start, end time.Time
	attributes map[string]any // attributes besides the trace id and the type
	failure    *spanFailure   // nil for a span that ended well
}

// spanFailure is why a span ended in error.
type spanFailure struct{ kind, message string }

// spanContent is the JSON of MLflow's Span.to_dict(), stored in spans.content.
type spanContent struct {
	TraceID           string            `json:"trace_id"`       // base64 of the 16-byte trace id
	SpanID            string            `json:"span_id"`        // base64 of the 8-byte span id
	ParentSpanID      *string           `json:"parent_span_id"` // null for the root span
	Name              string            `json:"name"`
	StartTimeUnixNano int64             `json:"start_time_unix_nano"`
	EndTimeUnixNano   int64             `json:"end_time_unix_nano"`
	Events            []spanEvent       `json:"events"`
	Status            spanStatus        `json:"status"`
	Attributes        map[string]string `json:"attributes"` // every value is itself JSON
}

type spanEvent struct {
	Name         string            `json:"name"`
	TimeUnixNano int64             `json:"time_unix_nano"`
	Attributes   map[string]string `json:"attributes"`
}

type spanStatus struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// addSpan appends the spans row of s.
func (b *rows) addSpan(exp experiment, s spanSpec) error {
	traceID := s.ids.traceID()
	content := spanContent{
		TraceID: base64.StdEncoding.EncodeToString(s.ids.trace[:]),
		SpanID:  base64.StdEncoding.EncodeToString(s.id[:]),
		Name:    truncate(s.name, 0), StartTimeUnixNano: s.start.UnixNano(), EndTimeUnixNano: s.end.UnixNano(),
		Events:     []spanEvent{},
		Status:     spanStatus{Code: "STATUS_CODE_OK"},
		Attributes: make(map[string]string, len(s.attributes)+2),
	}
	content.Attributes["mlflow.traceRequestId"] = strconv.Quote(traceID)
	content.Attributes["mlflow.spanType"] = strconv.Quote(s.spanType)
	for k, v := range s.attributes {
		j, err := marshalJSON(v)
		if err != nil {
			return fmt.Errorf("span %s attribute %s: %w", s.name, k, err)
		}
		content.Attributes[k] = j
	}
	row := spanRow{
		TraceID: traceID, ExperimentID: exp.id, SpanID: hex.EncodeToString(s.id[:]),
		Name: content.Name, Type: s.spanType, Status: statusOK,
		StartTimeUnixNano: content.StartTimeUnixNano, EndTimeUnixNano: content.EndTimeUnixNano,
	}
	if s.parent != nil {
		p := base64.StdEncoding.EncodeToString(s.parent[:])
		content.ParentSpanID = &p
		row.ParentSpanID = hex.EncodeToString(s.parent[:])
	}
	if f := s.failure; f != nil {
		msg := truncate(f.message, 0)
		content.Status = spanStatus{Code: "STATUS_CODE_ERROR", Message: msg}
		content.Events = append(content.Events, spanEvent{Name: "exception", TimeUnixNano: s.end.UnixNano(),
			Attributes: map[string]string{"exception.type": f.kind, "exception.message": msg}})
		row.Status = statusError
	}
	j, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("span %s: %w", s.name, err)
	}
	row.Content = string(j)
	b.spans = append(b.spans, row)
	return nil
}

// marshalJSON returns v's JSON without HTML escaping, as Python's json
// module writes it, so that previews and attributes show "<" and "&".
func marshalJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// requestType is the mlflow.gateway.requestType of a call through e: the
// route type of MLflow's gateway that serves such calls, none for a token
// count, which no route type serves.
func requestType(e domain.Endpoint) string {
	switch e {
	case domain.EndpointEmbeddings:
		return "llm/v1/embeddings"
	case domain.EndpointCountTokens:
		return ""
	}
	return "llm/v1/chat"
}

// answered reports whether r has an answer for the trace's outputs: a call
// that succeeded, but not a token count, whose outcome is the count (its
// usage) and which has no response.
func answered(r domain.CallRecord) bool {
	return r.Outcome == domain.OutcomeOK && r.Endpoint != domain.EndpointCountTokens
}

// The bodies of the span inputs and outputs, in the shape of the API the
// call came through (see chatformat.go for Messages and Responses).
// Without full content they carry the request's parameters and the usage,
// but no text.
type chatRequestBody struct {
	Model       string       `json:"model"`
	Messages    []oaiMessage `json:"messages,omitempty"`
	Tools       []oaiTool    `json:"tools,omitempty"`
	Temperature *float64     `json:"temperature,omitempty"`
	Seed        *int64       `json:"seed,omitempty"`
	Presence    *float64     `json:"presence_penalty,omitempty"`
	Frequency   *float64     `json:"frequency_penalty,omitempty"`
	MaxTokens   int          `json:"max_tokens,omitempty"`
	Stream      bool         `json:"stream,omitempty"`
	User        string       `json:"user,omitempty"`
}

// embedRequestBody is an embeddings request as the client sent it: input
// its text, or its arrays of token ids.
type embedRequestBody struct {
	Model string `json:"model"`
	Input any    `json:"input,omitempty"`
	User  string `json:"user,omitempty"`
}

type chatChoice struct {
	Index   int        `json:"index"`
	Message oaiMessage `json:"message"`
}

type chatResponseBody struct {
	Object  string         `json:"object"`
	Model   string         `json:"model"`
	Choices []chatChoice   `json:"choices,omitempty"`
	Usage   usagewire.Chat `json:"usage"`
}

type embedResponseBody struct {
	Object     string         `json:"object"`
	Model      string         `json:"model"`
	Dimensions int            `json:"dimensions,omitempty"`
	Usage      usagewire.Chat `json:"usage"`
}

func requestBody(c call, model string) any {
	r := c.rec
	switch requestShape(r.Endpoint) {
	case domain.EndpointEmbeddings:
		body := embedRequestBody{Model: model, User: r.ClientUser}
		switch {
		case len(r.EmbedTokens) > 0:
			body.Input = r.EmbedTokens
		case len(r.EmbedInputs) > 0:
			body.Input = r.EmbedInputs
		}
		return body
	case domain.EndpointMessages:
		return anthRequest(r, model)
	case domain.EndpointResponses:
		return respRequest(r, model)
	}
	return chatRequestBody{Model: model, Messages: oaiMessages(r.Messages), Tools: oaiTools(r.Tools),
		Temperature: r.Temperature, Seed: r.Seed, Presence: r.PresencePenalty, Frequency: r.FrequencyPenalty,
		MaxTokens: r.MaxTokens, Stream: r.Stream, User: r.ClientUser}
}

func responseBody(c call) any {
	r := c.rec
	switch r.Endpoint {
	case domain.EndpointEmbeddings:
		usage := usagewire.Chat{PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens, TotalTokens: r.Usage.Total()}
		return embedResponseBody{Object: "list", Model: r.UpstreamModel, Dimensions: r.Dimensions, Usage: usage}
	case domain.EndpointMessages:
		return anthResponse(c)
	case domain.EndpointResponses:
		return respResponse(c)
	}
	body := chatResponseBody{Object: "chat.completion", Model: r.UpstreamModel, Usage: usagewire.ChatOf(r.Usage)}
	if c.content.KeepsText() {
		body.Choices = []chatChoice{{Message: oaiAnswer(r)}}
	}
	return body
}
