package mlflow

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
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
	trace [16]byte
	root  [8]byte
	llm   [8]byte
}

func newTraceIDs(requestID string) traceIDs {
	h := sha256.Sum256([]byte("tidygate trace " + requestID))
	var ids traceIDs
	copy(ids.trace[:], h[:16])
	copy(ids.root[:], h[16:24])
	copy(ids.llm[:], h[24:32])
	return ids
}

// traceID returns MLflow's trace id: "tr-" and 32 hex digits.
func (ids traceIDs) traceID() string { return "tr-" + hex.EncodeToString(ids.trace[:]) }

// MLflow's trace and span status names.
const (
	statusOK    = "OK"
	statusError = "ERROR"
)

// tokenUsage and costUSD are the JSON MLflow keeps in the trace metadata
// (mlflow.trace.tokenUsage, mlflow.trace.cost) and in the provider span's
// attributes (mlflow.chat.tokenUsage, mlflow.llm.cost).
type tokenUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type costUSD struct {
	InputCost  float64 `json:"input_cost"`
	OutputCost float64 `json:"output_cost"`
	TotalCost  float64 `json:"total_cost"`
}

func usageOf(r domain.CallRecord) tokenUsage {
	return tokenUsage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens, TotalTokens: r.Usage.Total()}
}

func costOf(r domain.CallRecord) costUSD {
	return costUSD{InputCost: r.InputCost.USD(), OutputCost: r.OutputCost.USD(), TotalCost: r.Cost().USD()}
}

// addTrace appends the rows of c's trace to b: trace_info, its tags,
// metadata and token metrics, a root span "gateway/<model>" and, when a
// provider was called, a child span "provider/<provider>/<upstream model>"
// with the cost metrics. A non-empty runID names the run the trace belongs to.
func (b *rows) addTrace(c call, exp experiment, runID string) error {
	r := c.rec
	ids := newTraceIDs(r.RequestID)
	traceID := ids.traceID()
	model := modelOf(r)
	rootName := "gateway/" + model
	status := statusOK
	if r.Outcome != domain.OutcomeOK {
		status = statusError
	}
	withProvider := r.Outcome != domain.OutcomeRejected && r.Provider != ""
	numSpans := 1
	if withProvider {
		numSpans = 2
	}
	usage, cost := usageOf(r), costOf(r)
	usageJSON, err := json.Marshal(usage)
	if err != nil {
		return err
	}
	costJSON, err := json.Marshal(cost)
	if err != nil {
		return err
	}

	b.traceInfo = append(b.traceInfo, traceInfoRow{
		RequestID: traceID, ExperimentID: exp.id,
		TimestampMS: r.Start.UnixMilli(), ExecutionTimeMS: r.Duration().Milliseconds(),
		Status: status, ClientRequestID: truncate(r.RequestID, 50),
		RequestPreview: c.requestPreview, ResponsePreview: c.responsePreview,
		TraceName:   truncate(rootName, 0),
		InputTokens: int64(usage.InputTokens), OutputTokens: int64(usage.OutputTokens), TotalTokens: int64(usage.TotalTokens),
		InputCost: cost.InputCost, OutputCost: cost.OutputCost, TotalCost: cost.TotalCost,
	})
	for _, m := range []struct {
		key   string
		value int
	}{{"input_tokens", usage.InputTokens}, {"output_tokens", usage.OutputTokens}, {"total_tokens", usage.TotalTokens}} {
		b.traceMetrics = append(b.traceMetrics, traceMetricRow{RequestID: traceID, Key: m.key, Value: float64(m.value)})
	}

	tag := func(key, value string) {
		if value != "" {
			b.traceTags = append(b.traceTags, keyValueRow{Key: key, Value: truncate(value, maxTagValue), RequestID: traceID})
		}
	}
	tag("mlflow.traceName", rootName)
	tag("mlflow.artifactLocation", exp.artifactLocation+"/traces/"+traceID+"/artifacts")
	tag("mlflow.trace.spansLocation", "TRACKING_STORE")
	tag("tidygate.model", model)
	tag("tidygate.outcome", string(r.Outcome))
	tag("tidygate.user", r.User)
	tag("tidygate.team", r.Team)

	meta := func(key, value string) {
		if value != "" {
			b.traceMeta = append(b.traceMeta, keyValueRow{Key: key, Value: truncate(value, maxTagValue), RequestID: traceID})
		}
	}
	meta("mlflow.trace_schema.version", "3")
	meta("mlflow.trace.infoFinalized", "true")
	meta("mlflow.trace.sizeStats", fmt.Sprintf(`{"num_spans":%d}`, numSpans))
	meta("mlflow.trace.tokenUsage", string(usageJSON))
	meta("mlflow.trace.cost", string(costJSON))
	meta("mlflow.trace.user", r.User)
	meta("mlflow.gateway.endpointId", model)
	meta("mlflow.gateway.requestType", requestType(r.Endpoint))
	meta("mlflow.gateway.caller", "tidygate")
	meta("mlflow.sourceRun", runID)
	meta("tidygate.request_id", r.RequestID)
	meta("tidygate.team", r.Team)
	meta("tidygate.key_id", r.KeyID)
	meta("tidygate.audit_reason", r.AuditReason)
	meta("tidygate.client_user", r.ClientUser)
	meta("tidygate.requested_model", r.RequestedModel)
	meta("tidygate.provider", r.Provider)
	meta("tidygate.upstream_model", r.UpstreamModel)
	meta("tidygate.stream", strconv.FormatBool(r.Stream))
	meta("tidygate.attempts", strconv.Itoa(r.Attempts))
	meta("tidygate.fallback_used", strconv.FormatBool(r.FallbackUsed))
	meta("tidygate.outcome", string(r.Outcome))
	if r.Outcome != domain.OutcomeOK {
		meta("tidygate.error_kind", r.ErrorKind.String())
	}
	meta("tidygate.error", r.ErrorMessage) // a successful call may carry one too (a failed settlement)

	err = b.addSpan(exp, spanSpec{
		ids: ids, id: ids.root[:], name: rootName, spanType: "CHAIN",
		start: r.Start, end: r.End, call: c, request: requestBody(c, r.RequestedModel),
		attributes: map[string]any{"endpoint_name": model, "endpoint_id": model},
	})
	if err != nil || !withProvider {
		return err
	}
	return b.addProviderSpan(exp, c, ids, usage, cost)
}

// addProviderSpan appends the span of the provider call, a child of the
// root span, and its cost metrics. The span ends with the call and lasts
// as long as tidygate waited on providers (retries and fallbacks included).
func (b *rows) addProviderSpan(exp experiment, c call, ids traceIDs, usage tokenUsage, cost costUSD) error {
	r := c.rec
	spanType := "CHAT_MODEL"
	if r.Endpoint == domain.EndpointEmbeddings {
		spanType = "EMBEDDING"
	}
	start := r.Start
	if r.ProviderTime > 0 && r.End.Add(-r.ProviderTime).After(r.Start) {
		start = r.End.Add(-r.ProviderTime)
	}
	err := b.addSpan(exp, spanSpec{
		ids: ids, id: ids.llm[:], parent: ids.root[:],
		name: "provider/" + r.Provider + "/" + r.UpstreamModel, spanType: spanType,
		start: start, end: r.End, call: c, request: requestBody(c, r.UpstreamModel),
		attributes: map[string]any{
			"mlflow.chat.tokenUsage": usage,
			"mlflow.llm.cost":        cost,
			"mlflow.llm.model":       r.UpstreamModel,
			"mlflow.llm.provider":    r.Provider,
		},
		provider: true,
	})
	if err != nil {
		return err
	}
	traceID, spanID := ids.traceID(), hex.EncodeToString(ids.llm[:])
	for _, m := range []struct {
		key   string
		value float64
	}{{"input_cost", cost.InputCost}, {"output_cost", cost.OutputCost}, {"total_cost", cost.TotalCost}} {
		b.spanMetrics = append(b.spanMetrics, spanMetricRow{TraceID: traceID, SpanID: spanID, Key: m.key, Value: m.value})
	}
	return nil
}

// spanSpec describes one span of a call's trace.
type spanSpec struct {
	ids        traceIDs
	id, parent []byte // parent is nil for the root span
	name       string
	spanType   string
	start, end time.Time
	call       call
	request    any            // the span's inputs
	attributes map[string]any // attributes besides the ids, type, inputs and outputs
	provider   bool           // the provider span fills the model, provider and cost columns
}

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
	r := s.call.rec
	traceID := s.ids.traceID()
	ok := r.Outcome == domain.OutcomeOK
	attrs := map[string]any{
		"mlflow.traceRequestId": traceID,
		"mlflow.spanType":       s.spanType,
		"mlflow.spanInputs":     s.request,
	}
	if ok {
		attrs["mlflow.spanOutputs"] = responseBody(s.call)
	}
	if r.Endpoint != domain.EndpointEmbeddings {
		attrs["mlflow.message.format"] = "openai"
	}
	for k, v := range s.attributes {
		attrs[k] = v
	}
	content := spanContent{
		TraceID: base64.StdEncoding.EncodeToString(s.ids.trace[:]),
		SpanID:  base64.StdEncoding.EncodeToString(s.id),
		Name:    truncate(s.name, 0), StartTimeUnixNano: s.start.UnixNano(), EndTimeUnixNano: s.end.UnixNano(),
		Events:     []spanEvent{},
		Status:     spanStatus{Code: "STATUS_CODE_OK"},
		Attributes: make(map[string]string, len(attrs)),
	}
	for k, v := range attrs {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("span %s attribute %s: %w", s.name, k, err)
		}
		content.Attributes[k] = string(j)
	}
	row := spanRow{
		TraceID: traceID, ExperimentID: exp.id, SpanID: hex.EncodeToString(s.id),
		Name: content.Name, Type: s.spanType, Status: statusOK,
		StartTimeUnixNano: content.StartTimeUnixNano, EndTimeUnixNano: content.EndTimeUnixNano,
	}
	if s.parent != nil {
		p := base64.StdEncoding.EncodeToString(s.parent)
		content.ParentSpanID = &p
		row.ParentSpanID = hex.EncodeToString(s.parent)
	}
	if !ok {
		msg := truncate(r.ErrorMessage, 0)
		content.Status = spanStatus{Code: "STATUS_CODE_ERROR", Message: msg}
		content.Events = append(content.Events, spanEvent{Name: "exception", TimeUnixNano: s.end.UnixNano(),
			Attributes: map[string]string{"exception.type": r.ErrorKind.String(), "exception.message": msg}})
		row.Status = statusError
	}
	j, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("span %s: %w", s.name, err)
	}
	row.Content = string(j)
	if s.provider {
		dims, err := json.Marshal(map[string]string{"mlflow.llm.model": r.UpstreamModel, "mlflow.llm.provider": r.Provider})
		if err != nil {
			return fmt.Errorf("span %s dimensions: %w", s.name, err)
		}
		cost := costOf(r)
		row.DimensionAttributes = dims
		row.ModelName, row.ModelProvider = truncate(r.UpstreamModel, 0), truncate(r.Provider, 0)
		row.InputCost, row.OutputCost, row.TotalCost = &cost.InputCost, &cost.OutputCost, &cost.TotalCost
	}
	b.spans = append(b.spans, row)
	return nil
}

func requestType(e domain.Endpoint) string {
	if e == domain.EndpointEmbeddings {
		return "llm/v1/embeddings"
	}
	return "llm/v1/chat"
}

// The OpenAI-shaped bodies of the span inputs and outputs. Without full
// content they carry the request's parameters and the usage, but no text.
type chatRequestBody struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Stream      bool          `json:"stream,omitempty"`
	User        string        `json:"user,omitempty"`
}

type embedRequestBody struct {
	Model string   `json:"model"`
	Input []string `json:"input,omitempty"`
	User  string   `json:"user,omitempty"`
}

type usageBody struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatChoice struct {
	Index   int         `json:"index"`
	Message chatMessage `json:"message"`
}

type chatResponseBody struct {
	Object  string       `json:"object"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices,omitempty"`
	Usage   usageBody    `json:"usage"`
}

type embedResponseBody struct {
	Object     string    `json:"object"`
	Model      string    `json:"model"`
	Dimensions int       `json:"dimensions,omitempty"`
	Usage      usageBody `json:"usage"`
}

func requestBody(c call, model string) any {
	r := c.rec
	if r.Endpoint == domain.EndpointEmbeddings {
		return embedRequestBody{Model: model, Input: r.EmbedInputs, User: r.ClientUser}
	}
	body := chatRequestBody{Model: model, Temperature: r.Temperature, MaxTokens: r.MaxTokens, Stream: r.Stream, User: r.ClientUser}
	for _, m := range r.Messages {
		body.Messages = append(body.Messages, chatMessage{Role: string(m.Role), Content: m.Content, Name: m.Name})
	}
	return body
}

func responseBody(c call) any {
	r := c.rec
	usage := usageBody{PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens, TotalTokens: r.Usage.Total()}
	if r.Endpoint == domain.EndpointEmbeddings {
		return embedResponseBody{Object: "list", Model: r.UpstreamModel, Dimensions: r.Dimensions, Usage: usage}
	}
	body := chatResponseBody{Object: "chat.completion", Model: r.UpstreamModel, Usage: usage}
	if c.content == ContentFull {
		body.Choices = []chatChoice{{Message: chatMessage{Role: string(domain.RoleAssistant), Content: r.Output}}}
	}
	return body
}
