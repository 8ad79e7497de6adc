package mlflow

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
)

var testExperiment = experiment{id: 7, artifactLocation: "mlflow-artifacts:/7"}

// traceRows journals r under the content mode and returns the rows of its trace.
func traceRows(t *testing.T, r domain.CallRecord, mode ContentMode) rows {
	t.Helper()
	value, err := encodeRecord(r, mode)
	if err != nil {
		t.Fatalf("encodeRecord: %v", err)
	}
	c, err := decodeRecord(value)
	if err != nil {
		t.Fatalf("decodeRecord: %v", err)
	}
	var b rows
	if err := b.addTrace(c, testExperiment, ""); err != nil {
		t.Fatalf("addTrace: %v", err)
	}
	return b
}

func metadata(b rows) map[string]string {
	m := map[string]string{}
	for _, kv := range b.traceMeta {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestSpanContentIsMLflowSpanDict(t *testing.T) {
	r := sample("req-span", okChat, 1)
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 2 {
		t.Fatalf("spans = %d, want 2", len(b.spans))
	}
	traceID := b.traceInfo[0].RequestID
	wantTraceBytes, _ := hex.DecodeString(strings.TrimPrefix(traceID, "tr-"))
	root, llm := b.spans[0], b.spans[1]
	for _, s := range b.spans {
		var c struct {
			TraceID      string  `json:"trace_id"`
			SpanID       string  `json:"span_id"`
			ParentSpanID *string `json:"parent_span_id"`
			Name         string  `json:"name"`
			Start        int64   `json:"start_time_unix_nano"`
			End          int64   `json:"end_time_unix_nano"`
			Events       []any   `json:"events"`
			Status       struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
			Attributes map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(s.Content), &c); err != nil {
			t.Fatalf("span %s content does not parse: %v", s.Name, err)
		}
		if got, err := base64.StdEncoding.DecodeString(c.TraceID); err != nil || string(got) != string(wantTraceBytes) {
			t.Errorf("span %s trace_id %q does not decode to %s", s.Name, c.TraceID, traceID)
		}
		if got, err := base64.StdEncoding.DecodeString(c.SpanID); err != nil || hex.EncodeToString(got) != s.SpanID {
			t.Errorf("span %s span_id %q does not decode to the row's %s", s.Name, c.SpanID, s.SpanID)
		}
		if c.Name != s.Name || c.Start != s.StartTimeUnixNano || c.End != s.EndTimeUnixNano || c.Events == nil {
			t.Errorf("span %s content disagrees with its row: %+v", s.Name, c)
		}
		if c.Status.Code != "STATUS_CODE_OK" || s.Status != "OK" {
			t.Errorf("span %s status %q / %q, want OK", s.Name, c.Status.Code, s.Status)
		}
		for k, v := range c.Attributes {
			if !json.Valid([]byte(v)) {
				t.Errorf("span %s attribute %s = %q is not JSON", s.Name, k, v)
			}
		}
		if c.Attributes["mlflow.traceRequestId"] != `"`+traceID+`"` {
			t.Errorf("span %s mlflow.traceRequestId = %q, want %q", s.Name, c.Attributes["mlflow.traceRequestId"], traceID)
		}
		if c.Attributes["mlflow.spanType"] != `"`+s.Type+`"` {
			t.Errorf("span %s mlflow.spanType = %q, want type %q", s.Name, c.Attributes["mlflow.spanType"], s.Type)
		}
		switch s.SpanID {
		case root.SpanID:
			if c.ParentSpanID != nil || s.ParentSpanID != "" {
				t.Errorf("root span has a parent")
			}
		case llm.SpanID:
			p, err := base64.StdEncoding.DecodeString(deref(c.ParentSpanID))
			if err != nil || hex.EncodeToString(p) != root.SpanID || s.ParentSpanID != root.SpanID {
				t.Errorf("provider span's parent %v / %q is not the root %s", c.ParentSpanID, s.ParentSpanID, root.SpanID)
			}
			for _, k := range []string{"mlflow.chat.tokenUsage", "mlflow.llm.cost", "mlflow.llm.model", "mlflow.llm.provider", "mlflow.message.format", "mlflow.spanInputs", "mlflow.spanOutputs"} {
				if _, ok := c.Attributes[k]; !ok {
					t.Errorf("provider span lacks attribute %s", k)
				}
			}
			var usage map[string]int
			_ = json.Unmarshal([]byte(c.Attributes["mlflow.chat.tokenUsage"]), &usage)
			if usage["input_tokens"] != r.Usage.PromptTokens || usage["output_tokens"] != r.Usage.CompletionTokens || usage["total_tokens"] != r.Usage.Total() {
				t.Errorf("mlflow.chat.tokenUsage = %v, want the record's %+v", usage, r.Usage)
			}
			var cost map[string]float64
			_ = json.Unmarshal([]byte(c.Attributes["mlflow.llm.cost"]), &cost)
			if cost["total_cost"] != r.Cost().USD() || cost["input_cost"] != r.InputCost.USD() {
				t.Errorf("mlflow.llm.cost = %v, want %v total", cost, r.Cost().USD())
			}
		}
	}
	if root.Name != "gateway/mock-chat" || root.Type != "CHAIN" {
		t.Errorf("root span %q %q, want gateway/mock-chat CHAIN", root.Name, root.Type)
	}
	if llm.Name != "provider/mock/mock-chat-v1" || llm.Type != "CHAT_MODEL" {
		t.Errorf("provider span %q %q, want provider/mock/mock-chat-v1 CHAT_MODEL", llm.Name, llm.Type)
	}
	if llm.StartTimeUnixNano != r.End.Add(-r.ProviderTime).UnixNano() || llm.EndTimeUnixNano != r.End.UnixNano() {
		t.Errorf("provider span runs %d–%d, want the provider's 200ms before the end", llm.StartTimeUnixNano, llm.EndTimeUnixNano)
	}
	var dims map[string]string
	if err := json.Unmarshal(llm.DimensionAttributes, &dims); err != nil || dims["mlflow.llm.model"] != "mock-chat-v1" {
		t.Errorf("dimension_attributes = %s (%v)", llm.DimensionAttributes, err)
	}
	if len(b.spanMetrics) != 3 || b.spanMetrics[2].Key != "total_cost" || b.spanMetrics[2].Value != r.Cost().USD() || b.spanMetrics[2].SpanID != llm.SpanID {
		t.Errorf("span metrics = %+v", b.spanMetrics)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestTraceRowsOfAChat(t *testing.T) {
	r := sample("req-chat", okChat, 2)
	b := traceRows(t, r, ContentFull)
	ti := b.traceInfo[0]
	if ti.Status != "OK" || ti.ClientRequestID != "req-chat" || ti.ExperimentID != 7 ||
		ti.TimestampMS != r.Start.UnixMilli() || ti.ExecutionTimeMS != 250 {
		t.Errorf("trace_info = %+v", ti)
	}
	if ti.RequestPreview != "question 2 about the secret plan" || ti.ResponsePreview != "answer 2 about the secret plan" {
		t.Errorf("previews = %q / %q", ti.RequestPreview, ti.ResponsePreview)
	}
	tags := map[string]string{}
	for _, kv := range b.traceTags {
		tags[kv.Key] = kv.Value
	}
	for k, want := range map[string]string{
		"mlflow.traceName":           "gateway/mock-chat",
		"mlflow.artifactLocation":    "mlflow-artifacts:/7/traces/" + ti.RequestID + "/artifacts",
		"mlflow.trace.spansLocation": "TRACKING_STORE",
		"tidygate.user":              "alice", "tidygate.team": "risk", "tidygate.model": "mock-chat", "tidygate.outcome": "ok",
	} {
		if tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, tags[k], want)
		}
	}
	meta := metadata(b)
	for k, want := range map[string]string{
		"mlflow.trace_schema.version": "3",
		"mlflow.trace.sizeStats":      `{"num_spans":2}`,
		"mlflow.trace.tokenUsage":     `{"input_tokens":12,"output_tokens":22,"total_tokens":34}`,
		"mlflow.trace.user":           "alice",
		"mlflow.trace.infoFinalized":  "true",
		"mlflow.gateway.endpointId":   "mock-chat",
		"mlflow.gateway.requestType":  "llm/v1/chat",
		"tidygate.audit_reason":       "quarterly model validation",
		"tidygate.key_id":             "key-1",
		"tidygate.request_id":         "req-chat",
		"tidygate.attempts":           "1",
		"tidygate.fallback_used":      "false",
		"tidygate.provider":           "mock",
		"tidygate.outcome":            "ok",
	} {
		if meta[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], want)
		}
	}
	if _, ok := meta["tidygate.error_kind"]; ok {
		t.Errorf("a successful call has an error kind")
	}
	r.ErrorMessage = "settling the spend failed: timeout"
	if got := metadata(traceRows(t, r, ContentFull))["tidygate.error"]; got != r.ErrorMessage {
		t.Errorf("a successful call's error message is kept as %q", got)
	}
	var cost map[string]float64
	if err := json.Unmarshal([]byte(meta["mlflow.trace.cost"]), &cost); err != nil || cost["total_cost"] != r.Cost().USD() {
		t.Errorf("mlflow.trace.cost = %q, want total %v", meta["mlflow.trace.cost"], r.Cost().USD())
	}
	if len(b.traceMetrics) != 3 || b.traceMetrics[2].Key != "total_tokens" || b.traceMetrics[2].Value != 34 {
		t.Errorf("trace metrics = %+v", b.traceMetrics)
	}
}

func TestRejectedCallHasOnlyTheRootSpan(t *testing.T) {
	r := sample("req-rejected", rejected, 3)
	r.Model = ""
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 1 || b.spans[0].ParentSpanID != "" || b.spans[0].Status != "ERROR" {
		t.Fatalf("spans = %+v, want one root span in error", b.spans)
	}
	if b.spans[0].Name != "gateway/"+unknownModel {
		t.Errorf("root span of an unresolved model is %q", b.spans[0].Name)
	}
	if b.traceInfo[0].Status != "ERROR" || b.traceInfo[0].ResponsePreview != "" {
		t.Errorf("trace_info = %+v", b.traceInfo[0])
	}
	meta := metadata(b)
	if meta["mlflow.trace.sizeStats"] != `{"num_spans":1}` || meta["tidygate.error_kind"] != "budget_exceeded" || meta["tidygate.error"] != "team budget exceeded" {
		t.Errorf("metadata = %v", meta)
	}
	if len(b.spanMetrics) != 0 {
		t.Errorf("a rejected call has span metrics %+v", b.spanMetrics)
	}
	var c spanContent
	if err := json.Unmarshal([]byte(b.spans[0].Content), &c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Code != "STATUS_CODE_ERROR" || c.Status.Message != "team budget exceeded" || len(c.Events) != 1 || c.Events[0].Name != "exception" {
		t.Errorf("root span status %+v events %+v", c.Status, c.Events)
	}
	if _, ok := c.Attributes["mlflow.spanOutputs"]; ok {
		t.Errorf("a rejected call has outputs")
	}
}

func TestEmbeddingTrace(t *testing.T) {
	b := traceRows(t, sample("req-embed", okEmbed, 4), ContentFull)
	if len(b.spans) != 2 || b.spans[1].Type != "EMBEDDING" {
		t.Fatalf("spans = %+v", b.spans)
	}
	if got := b.traceInfo[0].RequestPreview; got != `["first secret plan input","second secret plan input"]` {
		t.Errorf("request preview = %q", got)
	}
	if got := metadata(b)["mlflow.gateway.requestType"]; got != "llm/v1/embeddings" {
		t.Errorf("request type = %q", got)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	a, again, other := newTraceIDs("req-1"), newTraceIDs("req-1"), newTraceIDs("req-2")
	if a != again {
		t.Errorf("ids of one request id differ: %+v %+v", a, again)
	}
	if a.trace == other.trace || a.root == other.root || a.llm == other.llm {
		t.Errorf("ids of different request ids collide")
	}
	if a.root == a.llm {
		t.Errorf("root and provider span share an id")
	}
	if !regexp.MustCompile(`^tr-[0-9a-f]{32}$`).MatchString(a.traceID()) {
		t.Errorf("trace id %q is not tr- and 32 hex digits", a.traceID())
	}
	if id := runUUID("req-1"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) || id != runUUID("req-1") || id == runUUID("req-2") {
		t.Errorf("run uuid %q is not a stable 32-hex id", id)
	}
	one, two := traceRows(t, sample("req-1", okChat, 1), ContentFull), traceRows(t, sample("req-1", okChat, 1), ContentFull)
	if one.spans[0].Content != two.spans[0].Content || one.spans[1].SpanID != two.spans[1].SpanID {
		t.Errorf("the same record gives different spans")
	}
}

func TestPreviews(t *testing.T) {
	long := strings.Repeat("é", 1500)
	r := sample("req-long", okChat, 1)
	r.Messages = append(r.Messages, domain.Message{Role: domain.RoleAssistant, Content: "earlier answer"})
	r.Messages[1].Content = long
	r.Output = "bad \xff byte and a \x00 nul"
	req, resp := previews(r)
	if utf8.RuneCountInString(req) != 1000 || !strings.HasSuffix(req, "...") || !strings.HasPrefix(req, "éé") {
		t.Errorf("request preview has %d characters (%q…), want 1000 ending in ...", utf8.RuneCountInString(req), req[:10])
	}
	if resp != "bad \uFFFD byte and a  nul" {
		t.Errorf("response preview = %q, want invalid UTF-8 replaced and NUL dropped", resp)
	}
	r.Messages = []domain.Message{{Role: domain.RoleSystem, Content: "only a system prompt"}}
	if req, _ := previews(r); req != "only a system prompt" {
		t.Errorf("without a user message the preview is %q", req)
	}
	if got := truncate("short", 1000); got != "short" {
		t.Errorf("truncate changed a short string: %q", got)
	}
	if got := truncate("abcdef", 5); got != "ab..." {
		t.Errorf("truncate(abcdef, 5) = %q", got)
	}
}

func TestTagAndMetadataValuesRespectMLflowLimits(t *testing.T) {
	r := sample("req-big", providerError, 1)
	r.AuditReason = strings.Repeat("r", 10_000)
	r.ErrorMessage = strings.Repeat("e", 9_000)
	b := traceRows(t, r, ContentFull)
	for _, kv := range append(b.traceMeta, b.traceTags...) {
		if n := utf8.RuneCountInString(kv.Value); n > maxTagValue {
			t.Errorf("%s has %d characters, more than %d", kv.Key, n, maxTagValue)
		}
	}
	if got := metadata(b)["tidygate.audit_reason"]; len(got) != maxTagValue || !strings.HasSuffix(got, "...") {
		t.Errorf("a long audit reason is kept as %d characters", len(got))
	}
}

func TestContentModes(t *testing.T) {
	secret := "secret plan"
	for _, tc := range []struct {
		mode     ContentMode
		inSpans  bool // the prompt and output text appear in the spans
		previews bool
	}{
		{ContentFull, true, true},
		{ContentPreview, false, true},
		{ContentNone, false, false},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			for shape := range numShapes {
				r := sample("req-mode", shape, 1)
				value, err := encodeRecord(r, tc.mode)
				if err != nil {
					t.Fatal(err)
				}
				if tc.mode == ContentNone && strings.Contains(string(value), "secret") {
					t.Errorf("shape %d: the journal keeps text under content mode none: %s", shape, value)
				}
				b := traceRows(t, r, tc.mode)
				c, _ := decodeRecord(value)
				b.addRun(c, testExperiment)
				spans, _ := json.Marshal(b.spans)
				if got := strings.Contains(string(spans), secret); got != tc.inSpans {
					t.Errorf("shape %d: text in spans = %v, want %v", shape, got, tc.inSpans)
				}
				ti := b.traceInfo[0]
				if got := strings.Contains(ti.RequestPreview, "secret"); got != tc.previews {
					t.Errorf("shape %d: request preview %q, want text = %v", shape, ti.RequestPreview, tc.previews)
				}
				others, _ := json.Marshal([]any{b.traceTags, b.traceMeta, b.runs, b.runTags, b.params, b.metrics})
				if strings.Contains(string(others), secret) {
					t.Errorf("shape %d: prompt text in tags, metadata or runs: %s", shape, others)
				}
			}
		})
	}
}

func TestRecordEncodingRoundTrips(t *testing.T) {
	for shape := range numShapes {
		r := sample("req-wire", shape, shape)
		got, _ := json.Marshal(journaled(t, r).rec)
		want, _ := json.Marshal(r)
		if string(got) != string(want) {
			t.Errorf("shape %d: record changed in the journal:\n got %s\nwant %s", shape, got, want)
		}
	}
	if _, err := decodeRecord([]byte(`{"v":99,"request_id":"x"}`)); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("an unknown encoding version decodes: %v", err)
	}
}
