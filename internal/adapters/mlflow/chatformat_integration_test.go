//go:build integration

package mlflow

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// What MLflow reads of an agent's calls, read back from PostgreSQL as
// MLflow's tracking store reads it: the trace's token usage (metadata
// mlflow.trace.tokenUsage, and the trace_metrics rows its charts sum), the
// provider span's mlflow.chat.tokenUsage, and the root span's content: the
// request and answer in the dialect's chat format with the tool call and
// its result, the format named, the tools in mlflow.chat.tools.
func TestAgentCallsAsMLflowReadsThem(t *testing.T) {
	pool := newPool(t)
	c := openLog(t, pool, testOptions(t))
	eps := []domain.Endpoint{domain.EndpointChat, domain.EndpointMessages, domain.EndpointResponses}
	var recs []domain.CallRecord
	for _, ep := range eps {
		recs = append(recs, agentCall("agent-"+string(ep), ep))
	}
	recordAll(t, c, recs)
	flush(t, c)

	ctx := context.Background()
	wantUsage := map[string]float64{"input_tokens": 1300, "output_tokens": 90, "total_tokens": 1390,
		"cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}
	formats := map[domain.Endpoint]string{domain.EndpointChat: "openai", domain.EndpointMessages: "anthropic", domain.EndpointResponses: "openai"}
	for _, r := range recs {
		traceID := newTraceIDs(r.RequestID).traceID()
		var usageJSON string
		if err := pool.QueryRow(ctx, `SELECT value FROM trace_request_metadata WHERE request_id = $1 AND key = 'mlflow.trace.tokenUsage'`, traceID).Scan(&usageJSON); err != nil {
			t.Fatalf("%s: mlflow.trace.tokenUsage: %v", r.Endpoint, err)
		}
		var usage map[string]float64
		if err := json.Unmarshal([]byte(usageJSON), &usage); err != nil || !reflect.DeepEqual(usage, wantUsage) {
			t.Errorf("%s: mlflow.trace.tokenUsage = %s, want %v", r.Endpoint, usageJSON, wantUsage)
		}
		metrics := map[string]float64{}
		rows, err := pool.Query(ctx, `SELECT key, value FROM trace_metrics WHERE request_id = $1`, traceID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var v float64
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			metrics[k] = v
		}
		if !reflect.DeepEqual(metrics, wantUsage) {
			t.Errorf("%s: trace_metrics = %v, want %v", r.Endpoint, metrics, wantUsage)
		}

		var rootContent, llmContent string
		if err := pool.QueryRow(ctx, `SELECT content FROM spans WHERE trace_id = $1 AND parent_span_id IS NULL`, traceID).Scan(&rootContent); err != nil {
			t.Fatalf("%s: root span: %v", r.Endpoint, err)
		}
		if err := pool.QueryRow(ctx, `SELECT content FROM spans WHERE trace_id = $1 AND type = 'LLM'`, traceID).Scan(&llmContent); err != nil {
			t.Fatalf("%s: provider span: %v", r.Endpoint, err)
		}
		attrs := func(content string) map[string]any {
			var s spanContent
			if err := json.Unmarshal([]byte(content), &s); err != nil {
				t.Fatalf("%s: span content: %v", r.Endpoint, err)
			}
			out := map[string]any{}
			for k, v := range s.Attributes {
				var x any
				if err := json.Unmarshal([]byte(v), &x); err != nil {
					t.Fatalf("%s: attribute %s = %q is not JSON", r.Endpoint, k, v)
				}
				out[k] = x
			}
			return out
		}
		root, llm := attrs(rootContent), attrs(llmContent)
		spanUsage := map[string]float64{}
		for k, v := range llm["mlflow.chat.tokenUsage"].(map[string]any) {
			spanUsage[k] = v.(float64)
		}
		if !reflect.DeepEqual(spanUsage, wantUsage) {
			t.Errorf("%s: mlflow.chat.tokenUsage = %v, want %v", r.Endpoint, spanUsage, wantUsage)
		}
		if root["mlflow.message.format"] != formats[r.Endpoint] {
			t.Errorf("%s: mlflow.message.format = %v, want %s", r.Endpoint, root["mlflow.message.format"], formats[r.Endpoint])
		}
		if at(t, root["mlflow.chat.tools"], 0, "function", "name") != "read_file" {
			t.Errorf("%s: mlflow.chat.tools = %v", r.Endpoint, root["mlflow.chat.tools"])
		}
		in, out := root["mlflow.spanInputs"], root["mlflow.spanOutputs"]
		var call, result, answer any
		switch r.Endpoint {
		case domain.EndpointChat:
			call, result, answer = at(t, in, "messages", 2, "tool_calls", 0, "id"), at(t, in, "messages", 3, "tool_call_id"), at(t, out, "choices", 0, "message", "tool_calls", 0, "id")
		case domain.EndpointMessages:
			call, result, answer = at(t, in, "messages", 1, "content", 1, "id"), at(t, in, "messages", 2, "content", 0, "tool_use_id"), at(t, out, "content", 2, "id")
		case domain.EndpointResponses:
			call, result, answer = at(t, in, "input", 2, "call_id"), at(t, in, "input", 3, "call_id"), at(t, out, "output", 2, "call_id")
		}
		if call != "call_1" || result != "call_1" || answer != "call_2" {
			t.Errorf("%s: tool call %v, its result %v, the answer's call %v; want call_1, call_1, call_2", r.Endpoint, call, result, answer)
		}
	}
}
