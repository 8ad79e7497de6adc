package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The Responses API's part of the mock, for gateways that pass a client's
// Responses request through to an OpenAI upstream: the same reply as a
// Response object, or as its event stream (response.created, the text's
// deltas, response.completed with the usage).

// mockResponse is a Response object with one output message.
type mockResponse struct {
	ID        string           `json:"id"`
	Object    string           `json:"object"`
	CreatedAt int64            `json:"created_at"`
	Status    string           `json:"status"`
	Model     string           `json:"model"`
	Output    []mockOutputItem `json:"output"`
	Usage     *mockRespUsage   `json:"usage"`
}

type mockOutputItem struct {
	Type    string           `json:"type"`
	ID      string           `json:"id"`
	Status  string           `json:"status"`
	Role    string           `json:"role"`
	Content []mockOutputText `json:"content"`
}

type mockOutputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

type mockRespUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

func (m *Mock) responses(w http.ResponseWriter, r *http.Request) {
	req, size, n, ok := m.accept(w, r, "a Responses request")
	if !ok {
		return
	}
	in, out := size/4, len(m.opts.Reply)/4
	resp := mockResponse{ID: fmt.Sprintf("resp_mock_%d", n), Object: "response", CreatedAt: time.Now().Unix(), Status: "completed", Model: req.Model,
		Output: []mockOutputItem{{Type: "message", ID: fmt.Sprintf("msg_mock_%d", n), Status: "completed", Role: "assistant",
			Content: []mockOutputText{{Type: "output_text", Text: m.opts.Reply, Annotations: []any{}}}}},
		Usage: &mockRespUsage{InputTokens: in, OutputTokens: out, TotalTokens: in + out}}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	seq := 0
	send := func(event map[string]any) bool {
		event["sequence_number"] = seq
		seq++
		b, err := json.Marshal(event)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event["type"], b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	started := resp
	started.Status, started.Output, started.Usage = "in_progress", []mockOutputItem{}, nil
	if !send(map[string]any{"type": "response.created", "response": started}) {
		return
	}
	for _, piece := range m.chunks {
		if !m.wait(r, m.opts.ChunkDelay) ||
			!send(map[string]any{"type": "response.output_text.delta", "item_id": resp.Output[0].ID, "output_index": 0, "content_index": 0, "delta": piece}) {
			return
		}
	}
	send(map[string]any{"type": "response.completed", "response": resp})
}
