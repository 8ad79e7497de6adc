package mlflow

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	if err := b.addTrace(c, testExperiment, "", ""); err != nil {
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
		c := parseSpan(t, s)
		if got, err := base64.StdEncoding.DecodeString(c.TraceID); err != nil || string(got) != string(wantTraceBytes) {
			t.Errorf("span %s trace_id %q does not decode to %s", s.Name, c.TraceID, traceID)
		}
		if got, err := base64.StdEncoding.DecodeString(c.SpanID); err != nil || hex.EncodeToString(got) != s.SpanID {
			t.Errorf("span %s span_id %q does not decode to the row's %s", s.Name, c.SpanID, s.SpanID)
		}
		if c.Name != s.Name || c.StartTimeUnixNano != s.StartTimeUnixNano || c.EndTimeUnixNano != s.EndTimeUnixNano || c.Events == nil {
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
			for _, k := range []string{"mlflow.spanInputs", "mlflow.spanOutputs", "endpoint_name", "endpoint_id"} {
				if _, ok := c.Attributes[k]; !ok {
					t.Errorf("root span lacks attribute %s", k)
				}
			}
		case llm.SpanID:
			p, err := base64.StdEncoding.DecodeString(deref(c.ParentSpanID))
			if err != nil || hex.EncodeToString(p) != root.SpanID || s.ParentSpanID != root.SpanID {
				t.Errorf("provider span's parent %v / %q is not the root %s", c.ParentSpanID, s.ParentSpanID, root.SpanID)
			}
			for k, want := range map[string]string{"mlflow.llm.model": `"mock-chat-v1"`, "mlflow.llm.provider": `"mock"`, "method": `"chat"`} {
				if c.Attributes[k] != want {
					t.Errorf("provider span attribute %s = %q, want %s", k, c.Attributes[k], want)
				}
			}
			for _, k := range []string{"mlflow.spanInputs", "mlflow.spanOutputs", "streaming"} {
				if _, ok := c.Attributes[k]; ok {
					t.Errorf("provider span of a non-streamed call has attribute %s (the content is the root span's)", k)
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
	if root.Name != "gateway/mock-chat" || root.Type != "UNKNOWN" {
		t.Errorf("root span %q %q, want gateway/mock-chat UNKNOWN", root.Name, root.Type)
	}
	if llm.Name != "provider/mock/mock-chat-v1" || llm.Type != "LLM" {
		t.Errorf("provider span %q %q, want provider/mock/mock-chat-v1 LLM", llm.Name, llm.Type)
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

// parseSpan returns the parsed content of a spans row.
func parseSpan(t *testing.T, s spanRow) spanContent {
	t.Helper()
	var c spanContent
	if err := json.Unmarshal([]byte(s.Content), &c); err != nil {
		t.Fatalf("span %s content does not parse: %v", s.Name, err)
	}
	return c
}

func TestStreamedCallsProviderSpan(t *testing.T) {
	b := traceRows(t, sample("req-stream", okStream, 1), ContentFull)
	c := parseSpan(t, b.spans[1])
	if c.Attributes["method"] != `"chat_stream"` || c.Attributes["streaming"] != "true" {
		t.Errorf("streamed call's provider span: method %s, streaming %s; want \"chat_stream\", true", c.Attributes["method"], c.Attributes["streaming"])
	}
	e := parseSpan(t, traceRows(t, sample("req-embed", okEmbed, 1), ContentFull).spans[1])
	if e.Attributes["method"] != `"embeddings"` {
		t.Errorf("embedding call's provider span method %s", e.Attributes["method"])
	}
}

func TestContentIsWrittenOnce(t *testing.T) {
	for shape := range numShapes {
		b := traceRows(t, sample("req-once", shape, 1), ContentFull)
		n := 0
		for _, s := range b.spans {
			n += strings.Count(s.Content, "secret plan")
		}
		want := map[int]int{okChat: 2, okStream: 2, okEmbed: 2, providerError: 1, rejected: 1, okAfterRetry: 2}[shape]
		if n != want {
			t.Errorf("shape %d: the spans hold the text %d times, want %d (inputs and outputs, once each)", shape, n, want)
		}
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
	if ti.Status != "OK" || ti.ClientRequestID != "client-req-chat" || ti.ExperimentID != 7 ||
		ti.TimestampMS != r.Start.UnixMilli() || ti.ExecutionTimeMS != 250 {
		t.Errorf("trace_info = %+v", ti)
	}
	if ti.RequestPreview != "question 2 about the secret plan" || ti.ResponsePreview != "answer 2 about the secret plan" {
		t.Errorf("previews = %q / %q", ti.RequestPreview, ti.ResponsePreview)
	}
	if ti.TotalTokens == nil || *ti.TotalTokens != 34 || ti.TotalCost == nil || *ti.TotalCost != r.Cost().USD() {
		t.Errorf("trace_info token and cost columns = %v, %v", ti.TotalTokens, ti.TotalCost)
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
		"mlflow.trace.tokenUsage":     `{"input_tokens":12,"output_tokens":22,"total_tokens":34}`,
		"mlflow.trace.user":           "alice",
		"mlflow.trace.infoFinalized":  "true",
		"mlflow.source.name":          "tidygate",
		"mlflow.source.type":          "LOCAL",
		"mlflow.user":                 "tidygate",
		"mlflow.gateway.requestType":  "llm/v1/chat",
		"tidygate.audit_reason":       "quarterly model validation",
		"tidygate.key_id":             "key-1",
		"tidygate.request_id":         "req-chat",
		"tidygate.client_request_id":  "client-req-chat",
		"tidygate.attempts":           "1",
		"tidygate.fallback_used":      "false",
		"tidygate.provider":           "mock",
		"tidygate.outcome":            "ok",
	} {
		if meta[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], want)
		}
	}
	for _, k := range []string{"tidygate.error_kind", "mlflow.gateway.endpointId", "mlflow.gateway.caller"} {
		if v, ok := meta[k]; ok {
			t.Errorf("metadata %s = %q, want none", k, v)
		}
	}
	c := parseSpan(t, b.spans[0])
	if meta["mlflow.traceInputs"] != c.Attributes["mlflow.spanInputs"] || meta["mlflow.traceOutputs"] != truncate(c.Attributes["mlflow.spanOutputs"], 250) ||
		!strings.Contains(meta["mlflow.traceInputs"], "question 2") {
		t.Errorf("mlflow.traceInputs/Outputs = %q / %q, want the root span's inputs and outputs", meta["mlflow.traceInputs"], meta["mlflow.traceOutputs"])
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

func TestSizeStatsAreMLflows(t *testing.T) {
	for shape := range numShapes {
		b := traceRows(t, sample("req-size", shape, 1), ContentFull)
		meta := metadata(b)
		var st map[string]int
		if err := json.Unmarshal([]byte(meta["mlflow.trace.sizeStats"]), &st); err != nil {
			t.Fatalf("shape %d: sizeStats %q: %v", shape, meta["mlflow.trace.sizeStats"], err)
		}
		sizes := []int{}
		sum := 0
		for _, s := range b.spans {
			sizes = append(sizes, len(s.Content))
			sum += len(s.Content)
		}
		slices.Sort(sizes)
		if st["num_spans"] != len(b.spans) || st["max"] != sizes[len(sizes)-1] || st["p25"] > st["p50"] || st["p50"] > st["p75"] ||
			st["p75"] > st["max"] || st["p25"] < sizes[0] {
			t.Errorf("shape %d: sizeStats %v disagree with span sizes %v", shape, st, sizes)
		}
		if st["total_size_bytes"] <= sum || strconv.Itoa(st["total_size_bytes"]) != meta["mlflow.trace.sizeBytes"] {
			t.Errorf("shape %d: total %d (spans alone %d), sizeBytes %q", shape, st["total_size_bytes"], sum, meta["mlflow.trace.sizeBytes"])
		}
		for _, k := range []string{"total_size_bytes", "num_spans", "max", "p25", "p50", "p75"} {
			if _, ok := st[k]; !ok {
				t.Errorf("shape %d: sizeStats lacks %s", shape, k)
			}
		}
	}
	if got := percentile([]int{10, 20, 30, 40}, 0.25); got != 17 { // 10 + 0.75·10, truncated
		t.Errorf("p25 of 10..40 = %d, want 17", got)
	}
}

func TestRejectedCallHasOnlyTheRootSpanAndNoUsage(t *testing.T) {
	r := sample("req-rejected", rejected, 3)
	r.Model = ""
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 1 || b.spans[0].ParentSpanID != "" || b.spans[0].Status != "ERROR" {
		t.Fatalf("spans = %+v, want one root span in error", b.spans)
	}
	if b.spans[0].Name != "gateway/"+unknownModel {
		t.Errorf("root span of an unresolved model is %q", b.spans[0].Name)
	}
	ti := b.traceInfo[0]
	if ti.Status != "ERROR" || ti.ResponsePreview != "" || ti.TotalTokens != nil || ti.TotalCost != nil || ti.InputTokens != nil {
		t.Errorf("trace_info = %+v", ti)
	}
	meta := metadata(b)
	if !strings.Contains(meta["mlflow.trace.sizeStats"], `"num_spans": 1,`) || meta["tidygate.error_kind"] != "budget_exceeded" || meta["tidygate.error"] != "team budget exceeded" {
		t.Errorf("metadata = %v", meta)
	}
	for _, k := range []string{"mlflow.trace.tokenUsage", "mlflow.trace.cost", "mlflow.traceOutputs"} {
		if v, ok := meta[k]; ok {
			t.Errorf("a rejected call has %s = %q", k, v)
		}
	}
	if len(b.spanMetrics) != 0 || len(b.traceMetrics) != 0 {
		t.Errorf("a rejected call has span metrics %+v and trace metrics %+v", b.spanMetrics, b.traceMetrics)
	}
	c := parseSpan(t, b.spans[0])
	if c.Status.Code != "STATUS_CODE_ERROR" || c.Status.Message != "team budget exceeded" || len(c.Events) != 1 || c.Events[0].Name != "exception" {
		t.Errorf("root span status %+v events %+v", c.Status, c.Events)
	}
	if _, ok := c.Attributes["mlflow.spanOutputs"]; ok {
		t.Errorf("a rejected call has outputs")
	}
}

func TestFailedCallHasNoUsage(t *testing.T) {
	r := sample("req-failed", providerError, 3)
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 1+len(r.Attempts) {
		t.Fatalf("%d spans, want the root and one per attempt (%d)", len(b.spans), len(r.Attempts))
	}
	for _, s := range b.spans[1:] {
		if s.Status != "ERROR" || s.TotalCost != nil {
			t.Errorf("failed attempt's span %s: status %s, cost %v", s.SpanID, s.Status, s.TotalCost)
		}
		if _, ok := parseSpan(t, s).Attributes["mlflow.chat.tokenUsage"]; ok {
			t.Errorf("a failed attempt has token usage")
		}
	}
	meta := metadata(b)
	if _, ok := meta["mlflow.trace.tokenUsage"]; ok || len(b.traceMetrics) != 0 || len(b.spanMetrics) != 0 || b.traceInfo[0].TotalTokens != nil {
		t.Errorf("a failed call has usage: metadata %v, trace metrics %+v, span metrics %+v", meta, b.traceMetrics, b.spanMetrics)
	}
	if meta["tidygate.attempts"] != "3" {
		t.Errorf("tidygate.attempts = %q, want 3", meta["tidygate.attempts"])
	}
}

func TestOneSpanPerAttemptInTheOrderMade(t *testing.T) {
	r := sample("req-retry", okAfterRetry, 1)
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 3 {
		t.Fatalf("%d spans, want the root, the failed attempt and the one that answered", len(b.spans))
	}
	failed, answered := b.spans[1], b.spans[2]
	for i, s := range b.spans[1:] {
		a := r.Attempts[i]
		if s.StartTimeUnixNano != a.Start.UnixNano() || s.EndTimeUnixNano != a.End.UnixNano() || s.ParentSpanID != b.spans[0].SpanID || s.Type != "LLM" {
			t.Errorf("attempt %d's span runs %d–%d under %s, want %d–%d under the root", i, s.StartTimeUnixNano, s.EndTimeUnixNano, s.ParentSpanID, a.Start.UnixNano(), a.End.UnixNano())
		}
	}
	if failed.Status != "ERROR" || answered.Status != "OK" || b.traceInfo[0].Status != "OK" {
		t.Errorf("statuses: failed attempt %s, answering attempt %s, trace %s", failed.Status, answered.Status, b.traceInfo[0].Status)
	}
	fc := parseSpan(t, failed)
	if len(fc.Events) != 1 || fc.Events[0].Attributes["exception.type"] != "upstream" || fc.Status.Message != "mock provider failed: 500" {
		t.Errorf("failed attempt: status %+v, events %+v", fc.Status, fc.Events)
	}
	if _, ok := fc.Attributes["mlflow.llm.cost"]; ok {
		t.Errorf("the failed attempt carries the cost")
	}
	if _, ok := parseSpan(t, answered).Attributes["mlflow.llm.cost"]; !ok || answered.TotalCost == nil {
		t.Errorf("the answering attempt lacks the cost")
	}
	if len(b.spanMetrics) != 3 || b.spanMetrics[0].SpanID != answered.SpanID {
		t.Errorf("span metrics %+v, want the cost on the answering attempt %s", b.spanMetrics, answered.SpanID)
	}
	if got := metadata(b)["tidygate.attempts"]; got != "2" {
		t.Errorf("tidygate.attempts = %q, want 2", got)
	}
}

func TestARecordOfAnEarlierTidygateHasOneProviderSpan(t *testing.T) {
	c, err := decodeRecord([]byte(`{"v":1,"content":"full","request_id":"old","endpoint":"chat.completions",
		"start":"2026-11-28T09:30:00Z","end":"2026-11-28T09:30:01Z","model":"mock-chat","provider":"mock","upstream_model":"mock-chat-v1",
		"attempts":3,"outcome":"ok","prompt_tokens":5,"completion_tokens":7,"provider_time_ns":400000000}`))
	if err != nil {
		t.Fatal(err)
	}
	var b rows
	if err := b.addTrace(c, testExperiment, "", ""); err != nil {
		t.Fatal(err)
	}
	if len(b.spans) != 2 || b.spans[1].StartTimeUnixNano != c.rec.End.Add(-400*time.Millisecond).UnixNano() || b.spans[1].Status != "OK" {
		t.Errorf("spans %+v, want the root and one provider span over the provider's time", b.spans)
	}
	if got := metadata(b)["tidygate.attempts"]; got != "3" {
		t.Errorf("tidygate.attempts = %q, want the record's 3", got)
	}
}

func TestClientRequestID(t *testing.T) {
	r := sample("req-client", okChat, 1)
	r.ClientRequestID = ""
	b := traceRows(t, r, ContentFull)
	if b.traceInfo[0].ClientRequestID != "" {
		t.Errorf("without a client id, client_request_id = %q", b.traceInfo[0].ClientRequestID)
	}
	if _, ok := metadata(b)["tidygate.client_request_id"]; ok {
		t.Errorf("without a client id the metadata has one")
	}
	r.ClientRequestID = strings.Repeat("x", 50)
	if got := traceRows(t, r, ContentFull).traceInfo[0].ClientRequestID; got != r.ClientRequestID {
		t.Errorf("a 50-character client id is stored as %q", got)
	}
	r.ClientRequestID = strings.Repeat("é", 51)
	b = traceRows(t, r, ContentFull)
	if b.traceInfo[0].ClientRequestID != "" || metadata(b)["tidygate.client_request_id"] != r.ClientRequestID {
		t.Errorf("a 51-character client id: column %q, metadata %q; want none, and whole", b.traceInfo[0].ClientRequestID, metadata(b)["tidygate.client_request_id"])
	}
}

func TestGatewayEndpointIDOnlyWhenAsked(t *testing.T) {
	c := journaled(t, sample("req-endpoint", okChat, 1))
	var b rows
	if err := b.addTrace(c, testExperiment, "", "tidygate-spend"); err != nil {
		t.Fatal(err)
	}
	if got := metadata(b)["mlflow.gateway.endpointId"]; got != "tidygate-spend" {
		t.Errorf("mlflow.gateway.endpointId = %q, want the configured tidygate-spend", got)
	}
}

func TestEmbeddingTrace(t *testing.T) {
	r := sample("req-embed", okEmbed, 4)
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 2 || b.spans[1].Type != "LLM" {
		t.Fatalf("spans = %+v", b.spans)
	}
	root := parseSpan(t, b.spans[0])
	if got := b.traceInfo[0].RequestPreview; got != root.Attributes["mlflow.spanInputs"] || !strings.Contains(got, `"input":["first secret plan input","second secret plan input"]`) {
		t.Errorf("request preview = %q, want the inputs' JSON %q", got, root.Attributes["mlflow.spanInputs"])
	}
	if got := b.traceInfo[0].ResponsePreview; got != root.Attributes["mlflow.spanOutputs"] || !strings.Contains(got, `"object":"list"`) {
		t.Errorf("response preview = %q, want the outputs' JSON %q", got, root.Attributes["mlflow.spanOutputs"])
	}
	if got := metadata(b)["mlflow.gateway.requestType"]; got != "llm/v1/embeddings" {
		t.Errorf("request type = %q", got)
	}
	r.EmbedInputs = []string{strings.Repeat("<long & input> ", 100)}
	req, _ := previews(r)
	if utf8.RuneCountInString(req) != 1000 || !strings.HasSuffix(req, "...") || !strings.HasPrefix(req, `{"model":"mock-embed","input":["<long & input>`) {
		t.Errorf("a long embedding request preview is %q…, want its JSON cut to 1000 characters ending in ... and unescaped", req[:60])
	}
}

// TestEmbeddingTokensTrace: an embeddings call whose input was token ids
// is recorded as such, under the content policy that governs text: the
// arrays in the journal and the spans with full content, in the previews
// only with previews, nowhere without content.
func TestEmbeddingTokensTrace(t *testing.T) {
	r := sample("req-embed-tokens", okEmbed, 1)
	r.EmbedInputs, r.EmbedTokens = nil, [][]int{{9906, 1917}, {15339}}
	if got := journaled(t, r).rec.EmbedTokens; !reflect.DeepEqual(got, r.EmbedTokens) {
		t.Errorf("the journal kept the token input as %v, want %v", got, r.EmbedTokens)
	}
	const input = `"input":[[9906,1917],[15339]]`
	for _, tc := range []struct {
		mode            ContentMode
		inSpans, inPrev bool
	}{
		{ContentFull, true, true},
		{ContentPreview, false, true},
		{ContentNone, false, false},
	} {
		value, err := encodeRecord(r, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(value), `"embed_tokens":[[9906,1917],[15339]]`); got != tc.inSpans {
			t.Errorf("%s: token ids in the journal's record = %v, want %v: %s", tc.mode, got, tc.inSpans, value)
		}
		b := traceRows(t, r, tc.mode)
		inputs, _ := json.Marshal(rootAttributes(t, b)["mlflow.spanInputs"])
		if got := strings.Contains(string(inputs), input); got != tc.inSpans {
			t.Errorf("%s: the root span's inputs %s, want the token input = %v", tc.mode, inputs, tc.inSpans)
		}
		if got := strings.Contains(b.traceInfo[0].RequestPreview, input); got != tc.inPrev {
			t.Errorf("%s: request preview %q, want the token input = %v", tc.mode, b.traceInfo[0].RequestPreview, tc.inPrev)
		}
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	a, again, other := newTraceIDs("req-1"), newTraceIDs("req-1"), newTraceIDs("req-2")
	if a != again {
		t.Errorf("ids of one request id differ: %+v %+v", a, again)
	}
	if a.trace == other.trace || a.root == other.root || a.attemptSpan(0) == other.attemptSpan(0) || a.attemptSpan(1) == other.attemptSpan(1) {
		t.Errorf("ids of different request ids collide")
	}
	if a.root == a.attemptSpan(0) || a.attemptSpan(0) == a.attemptSpan(1) || a.attemptSpan(2) != again.attemptSpan(2) {
		t.Errorf("span ids of one trace collide or change")
	}
	if !regexp.MustCompile(`^tr-[0-9a-f]{32}$`).MatchString(a.traceID()) {
		t.Errorf("trace id %q is not tr- and 32 hex digits", a.traceID())
	}
	if id := runUUID("req-1"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) || id != runUUID("req-1") || id == runUUID("req-2") {
		t.Errorf("run uuid %q is not a stable 32-hex id", id)
	}
	one, two := traceRows(t, sample("req-1", okChat, 1), ContentFull), traceRows(t, sample("req-1", okChat, 1), ContentFull)
	if one.spans[0].Content != two.spans[0].Content || one.spans[1].SpanID != two.spans[1].SpanID || metadata(one)["mlflow.trace.sizeStats"] != metadata(two)["mlflow.trace.sizeStats"] {
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
	for _, kv := range b.traceTags {
		if n := utf8.RuneCountInString(kv.Value); n > maxTagValue {
			t.Errorf("tag %s has %d characters, more than %d", kv.Key, n, maxTagValue)
		}
	}
	for _, kv := range b.traceMeta {
		if n := utf8.RuneCountInString(kv.Value); n > 250 {
			t.Errorf("metadata %s has %d characters, more than MLflow's 250", kv.Key, n)
		}
	}
	meta := metadata(b)
	if got := meta["tidygate.audit_reason"]; len(got) != 250 || !strings.HasSuffix(got, "...") {
		t.Errorf("a long audit reason is kept as %d characters in the metadata", len(got))
	}
	root := parseSpan(t, b.spans[0])
	for key, whole := range map[string]string{"tidygate.audit_reason": r.AuditReason, "tidygate.error": r.ErrorMessage} {
		var got string
		if err := json.Unmarshal([]byte(root.Attributes[key]), &got); err != nil || got != whole {
			t.Errorf("root span attribute %s holds %d characters (%v), want the whole %d", key, len(got), err, len(whole))
		}
	}
	if _, ok := root.Attributes["tidygate.key_id"]; ok {
		t.Errorf("a short metadata value is copied onto the root span")
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
				var meta []keyValueRow
				for _, kv := range b.traceMeta {
					if kv.Key == "mlflow.traceInputs" || kv.Key == "mlflow.traceOutputs" {
						// MLflow's legacy copy of the root span's inputs and outputs: text only with it.
						if got := strings.Contains(kv.Value, "secret"); got && !tc.inSpans {
							t.Errorf("shape %d: %s holds text under content mode %s", shape, kv.Key, tc.mode)
						}
						continue
					}
					meta = append(meta, kv)
				}
				others, _ := json.Marshal([]any{b.traceTags, meta, b.runs, b.runTags, b.params, b.metrics})
				if strings.Contains(string(others), secret) {
					t.Errorf("shape %d: prompt text in tags, metadata or runs: %s", shape, others)
				}
			}
		})
	}
}

// A chat call's sampling parameters (temperature, seed, the presence and
// frequency penalties) are in its request span's inputs and in its run's
// params, a seed of 0 included, even without content: the audit trail
// shows what the answer was asked with.
func TestSamplingParametersAreRecorded(t *testing.T) {
	r := sample("req-sampling", okChat, 1)
	b := traceRows(t, r, ContentNone)
	in := rootAttributes(t, b)["mlflow.spanInputs"]
	if at(t, in, "temperature") != 0.2 || at(t, in, "seed") != float64(0) || at(t, in, "presence_penalty") != 0.5 ||
		at(t, in, "frequency_penalty") != -1.5 {
		t.Errorf("inputs %v lack the sampling parameters", in)
	}
	value, err := encodeRecord(r, ContentNone)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := decodeRecord(value)
	b.addRun(c, testExperiment)
	params := map[string]string{}
	for _, p := range b.params {
		params[p.Key] = p.Value
	}
	if params["temperature"] != "0.2" || params["seed"] != "0" || params["presence_penalty"] != "0.5" || params["frequency_penalty"] != "-1.5" {
		t.Errorf("params %v lack the sampling parameters", params)
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

func TestInterruptedAndOverclaimedCallsAreFlagged(t *testing.T) {
	r := sample("req-cut", okChat, 1)
	r.Outcome, r.ErrorKind, r.ErrorMessage = domain.OutcomeError, domain.KindUpstream, "the stream broke off"
	r.Interrupted = domain.InterruptedByUpstream
	r.UsageExceedsReservation = true
	m := metadata(traceRows(t, r, ContentFull))
	if m["tidygate.interrupted"] != "upstream" || m["tidygate.usage_exceeds_reservation"] != "true" {
		t.Fatalf("metadata %v lacks the interruption or the usage flag", m)
	}
	plain := metadata(traceRows(t, sample("req-plain", okChat, 1), ContentFull))
	if _, ok := plain["tidygate.interrupted"]; ok {
		t.Fatal("a complete call is marked interrupted")
	}
	if _, ok := plain["tidygate.usage_exceeds_reservation"]; ok {
		t.Fatal("a call within its reservation is flagged")
	}
}

// TestAttemptSpansNameTheirDeployment: a call that failed on one
// deployment and was answered by another has a span for each, saying its
// deployment, provider, status and latency, and the trace says which
// deployment answered.
func TestAttemptSpansNameTheirDeployment(t *testing.T) {
	r := sample("req-deployments", okAfterRetry, 1)
	r.Attempts[0].Provider, r.Attempts[0].UpstreamModel, r.Attempts[0].Deployment = "openai-main", "gpt-4o-mini", "openai-main/gpt-4o-mini"
	r.Attempts[1].Provider, r.Attempts[1].UpstreamModel, r.Attempts[1].Deployment = "azure-west", "my-deployment", "azure-west/my-deployment"
	r.Provider, r.UpstreamModel = "azure-west", "my-deployment"
	b := traceRows(t, r, ContentFull)
	if len(b.spans) != 3 {
		t.Fatalf("%d spans", len(b.spans))
	}
	want := []struct{ deployment, provider, status string }{
		{`"openai-main/gpt-4o-mini"`, `"openai-main"`, `"upstream"`},
		{`"azure-west/my-deployment"`, `"azure-west"`, `"ok"`},
	}
	for i, w := range want {
		s := b.spans[i+1]
		c := parseSpan(t, s)
		a := r.Attempts[i]
		if c.Attributes["tidygate.deployment"] != w.deployment || c.Attributes["mlflow.llm.provider"] != w.provider || c.Attributes["tidygate.status"] != w.status ||
			c.Attributes["tidygate.latency_ms"] != strconv.FormatInt(a.End.Sub(a.Start).Milliseconds(), 10) {
			t.Errorf("attempt %d's span attributes: %v", i, c.Attributes)
		}
	}
	if got := metadata(b)["tidygate.deployment"]; got != "azure-west/my-deployment" {
		t.Errorf("tidygate.deployment = %q, want the deployment that answered", got)
	}
	// The journal keeps each attempt's deployment.
	data, err := encodeRecord(r, ContentFull)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeRecord(data)
	if err != nil || back.rec.Attempts[1].Deployment != "azure-west/my-deployment" {
		t.Errorf("decoded attempts %+v, %v", back.rec.Attempts, err)
	}
}
