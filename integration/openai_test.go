//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// client is the official OpenAI Go SDK pointed at tidygate, without retries
// so that every error reaches the test.
func client(s *service, key string, extra ...option.RequestOption) openai.Client {
	opts := append([]option.RequestOption{
		option.WithBaseURL(s.URL + "/v1"),
		option.WithAPIKey(key),
		option.WithHeader("X-Audit-Reason", "integration test"),
		option.WithMaxRetries(0),
	}, extra...)
	return openai.NewClient(opts...)
}

func userMessage(text string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}
}

// apiError asserts err is an OpenAI API error with the given status and returns it.
func apiError(t *testing.T, err error, status int) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an OpenAI API error with status %d, got %v", status, err)
	}
	if e.StatusCode != status {
		t.Fatalf("status = %d, want %d (%s)", e.StatusCode, status, e.RawJSON())
	}
	return e
}

func TestOpenAIClient(t *testing.T) {
	s := start(t, baseEnv(t, pgtest.New(t)))
	ctx := context.Background()
	c := client(s, DevKey)

	t.Run("chat", func(t *testing.T) {
		var raw *http.Response
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "mock-chat", Messages: userMessage("Hello, gateway"),
		}, option.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content == "" {
			t.Fatalf("no answer: %+v", resp)
		}
		if resp.Usage.PromptTokens <= 0 || resp.Usage.CompletionTokens <= 0 ||
			resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens {
			t.Fatalf("usage = %+v", resp.Usage)
		}
		for _, h := range []string{"X-Request-Id", "X-Tidygate-Overhead-Ms"} {
			if raw.Header.Get(h) == "" {
				t.Errorf("response lacks %s", h)
			}
		}
	})

	t.Run("alias", func(t *testing.T) {
		resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock", Messages: userMessage("hi")})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content == "" {
			t.Fatal("empty answer through the alias")
		}
	})

	t.Run("streaming", func(t *testing.T) {
		stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "mock-chat", Messages: userMessage("stream please"),
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if chunks < 3 || acc.Choices[0].Message.Content == "" {
			t.Fatalf("chunks = %d, content %q", chunks, acc.Choices[0].Message.Content)
		}
		if acc.Usage.CompletionTokens <= 0 || acc.Usage.PromptTokens <= 0 {
			t.Fatalf("stream usage = %+v", acc.Usage)
		}
		// The same prompt without streaming gives the same text: the stream
		// is the answer, not a different one.
		whole, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("stream please")})
		if err != nil {
			t.Fatal(err)
		}
		if whole.Choices[0].Message.Content != acc.Choices[0].Message.Content {
			t.Fatalf("stream %q != non-stream %q", acc.Choices[0].Message.Content, whole.Choices[0].Message.Content)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		resp, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "mock-embed",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 || len(resp.Data[0].Embedding) == 0 || resp.Data[1].Index != 1 {
			t.Fatalf("embeddings = %d items", len(resp.Data))
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, m := range page.Data {
			ids[m.ID] = true
		}
		for _, want := range []string{"mock-chat", "mock-embed", "mock"} {
			if !ids[want] {
				t.Errorf("models lack %q: %v", want, ids)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "no-such-model", Messages: userMessage("x")})
		if e := apiError(t, err, 404); e.Code != "model_not_found" {
			t.Errorf("code = %q", e.Code)
		}
		stranger := client(s, "tg-not-a-real-key-000000000000000")
		_, err = stranger.Chat.Completions.New(ctx,
			openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x")})
		_ = apiError(t, err, 401)
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x")},
			option.WithHeaderDel("X-Audit-Reason"))
		if e := apiError(t, err, 400); !strings.Contains(e.Message, "X-Audit-Reason") {
			t.Errorf("message %q does not name the header", e.Message)
		}
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: nil})
		if e := apiError(t, err, 400); e.Param != "messages" {
			t.Errorf("param = %q", e.Param)
		}
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x"), Temperature: openai.Float(7)})
		if e := apiError(t, err, 400); e.Param != "temperature" {
			t.Errorf("param = %q", e.Param)
		}
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x"), MaxTokens: openai.Int(-1)})
		if e := apiError(t, err, 400); e.Param != "max_tokens" {
			t.Errorf("param = %q", e.Param)
		}
		_, err = c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "mock-chat",
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
		_ = apiError(t, err, 400)
	})

	t.Run("raw bad input", func(t *testing.T) {
		cases := []struct {
			name, body string
			status     int
			param      string
		}{
			{"invalid json", `{"model":"mock-chat","messages":[`, 400, ""},
			{"wrong type", `{"model":"mock-chat","messages":"hello"}`, 400, "messages"},
			{"bad role", `{"model":"mock-chat","messages":[{"role":"wizard","content":"x"}]}`, 400, "messages[0].role"},
			{"absurd max_tokens", `{"model":"mock-chat","messages":[{"role":"user","content":"x"}],"max_tokens":99999999999}`, 400, "max_tokens"},
			{"too large", `{"model":"mock-chat","messages":[{"role":"user","content":"` + strings.Repeat("a", 5<<20) + `"}]}`, 413, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := s.do("POST", "/v1/chat/completions", tc.body)
				if resp.StatusCode != tc.status {
					t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, body)
				}
				var e struct {
					Error struct {
						Message string  `json:"message"`
						Param   *string `json:"param"`
					} `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("not an OpenAI error object: %s", body)
				}
				if tc.param != "" && (e.Error.Param == nil || *e.Error.Param != tc.param) {
					t.Errorf("param = %v, want %q (%s)", e.Error.Param, tc.param, body)
				}
			})
		}
	})
}

// TestKeysAndPolicy makes keys with the CLI and checks allow-lists, revocation and usage.
func TestKeysAndPolicy(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	s := start(t, env)
	ctx := context.Background()

	key := createKey(t, env, "--user", "alice", "--team", "risk", "--models", "mock-chat")
	c := client(s, key)
	if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "mock-embed", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	if e := apiError(t, err, 403); e.Code != "model_not_allowed" {
		t.Errorf("code = %q", e.Code)
	}
	page, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Data {
		if m.ID == "mock-embed" {
			t.Errorf("models lists %q, which the key may not use", m.ID)
		}
	}

	resp, body := s.do("GET", "/v1/usage", "", "Authorization", "Bearer "+key)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mock-chat") {
		t.Fatalf("usage: %d %s", resp.StatusCode, body)
	}

	list := runCLI(t, env, "keys", "list")
	id := ""
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "alice" {
			id = f[0]
		}
	}
	if id == "" {
		t.Fatalf("keys list lacks alice:\n%s", list)
	}
	runCLI(t, env, "keys", "revoke", id, "--reason", "alice left the team")
	// The CLI is another process: the server hears of the revocation
	// through PostgreSQL's notifications, within a second.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, _ := s.do("GET", "/v1/models", "", "Authorization", "Bearer "+key); resp.StatusCode == 401 || time.Now().After(deadline) {
			break
		}
	}
	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: userMessage("x")})
	_ = apiError(t, err, 401)

	// Both changes are in the audit log, the create without a reason saying so.
	audit := dumpTables(t, dsn, "tidygate_audit_log")
	for _, want := range []string{"key.create", "no reason given (command line without --reason)", "key.revoke", "alice left the team", id} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
}

// TestBudgetExactUnderConcurrency fires 100 concurrent calls at a budget that
// fits exactly 10 and checks that spend never exceeds it and that no
// admissible call was refused.
func TestBudgetExactUnderConcurrency(t *testing.T) {
	env := baseEnv(t, pgtest.New(t))
	catalogue := t.TempDir() + "/catalogue.yaml"
	// mock-exact costs nothing for input and $1 per million output tokens, so
	// a call with max_tokens 5 reserves, and spends, exactly 5 micro-dollars.
	writeFile(t, catalogue, `models:
  - name: mock-exact
    type: chat
    provider: mock
    upstream: mock-chat
    price_per_million: {input: "0", output: "1"}
    max_output_tokens: 100
`)
	// 100 calls at once from one key: above the default per-key share (64),
	// which this test is not about.
	env = append(env, "CATALOGUE_FILE="+catalogue, "MAX_CONCURRENT_PER_KEY=100")
	s := start(t, env)
	key := createKey(t, env, "--user", "bob", "--team", "budget", "--daily-budget-usd", "0.00005")
	c := client(s, key)

	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: "mock-exact", Messages: userMessage("a long enough prompt for five words or more"), MaxTokens: openai.Int(5),
			})
			code := 200
			if err != nil {
				var e *openai.Error
				if !errors.As(err, &e) {
					t.Error(err)
					return
				}
				code = e.StatusCode
				if code == 429 && e.Code != "budget_exceeded" {
					t.Errorf("429 with code %q", e.Code)
				}
			}
			mu.Lock()
			status[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if status[200] != 10 || status[429] != 90 {
		t.Fatalf("statuses = %v, want 10×200 and 90×429", status)
	}
	resp, body := s.do("GET", "/v1/usage", "", "Authorization", "Bearer "+key)
	if resp.StatusCode != 200 {
		t.Fatalf("usage: %d %s", resp.StatusCode, body)
	}
	var usage struct {
		Budgets []struct {
			LimitMicros     int64 `json:"limit_micros"`
			SpentMicros     int64 `json:"spent_micros"`
			ReservedMicros  int64 `json:"reserved_micros"`
			RemainingMicros int64 `json:"remaining_micros"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal(body, &usage); err != nil || len(usage.Budgets) == 0 {
		t.Fatalf("usage body: %v %s", err, body)
	}
	b := usage.Budgets[0]
	if b.SpentMicros != 50 || b.ReservedMicros != 0 || b.SpentMicros > b.LimitMicros {
		t.Fatalf("budget after the burst = %+v, want spent 50 of 50, nothing reserved", b)
	}
}

// createKey runs `tidygate keys create` and returns the secret it prints.
func createKey(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out := runCLI(t, env, append([]string{"keys", "create"}, args...)...)
	key := strings.TrimSpace(out)
	if strings.Contains(key, "\n") || !strings.HasPrefix(key, "tg-") {
		t.Fatalf("keys create printed %q, want one key line", out)
	}
	return key
}

// runCLI runs the binary with env and returns its stdout; stderr goes to the log.
func runCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tidygate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
