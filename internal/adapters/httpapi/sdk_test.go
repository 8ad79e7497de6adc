package httpapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// TestOfficialSDK drives the handler with the official OpenAI Go SDK, which
// checks that the responses have the shape OpenAI clients expect.
func TestOfficialSDK(t *testing.T) {
	client := sdkClient(t, &fakeGateway{})
	ctx := context.Background()
	hi := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Hi")}

	t.Run("chat", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock", Messages: hi, MaxTokens: openai.Int(20)})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.JSON.ID.Valid() || !resp.JSON.Created.Valid() || !resp.JSON.Usage.Valid() || resp.Model != "mock-chat" ||
			len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "Hello there" || resp.Choices[0].FinishReason != "stop" ||
			resp.Usage.TotalTokens != 10 {
			t.Errorf("completion = %s", resp.RawJSON())
		}
	})

	t.Run("stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: hi,
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "Hello there" || acc.Choices[0].FinishReason != "stop" ||
			acc.Usage.PromptTokens != 7 || acc.Usage.CompletionTokens != 2 {
			t.Errorf("accumulated %+v, usage %+v", acc.Choices, acc.Usage)
		}
	})

	t.Run("stream error", func(t *testing.T) {
		client := sdkClient(t, &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
			_ = emit(domain.ChatChunk{Delta: "partial"})
			return gateway.ChatResult{}, &domain.Error{Kind: domain.KindUpstream, Message: "provider failed"}
		}})
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: hi})
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "provider failed") {
			t.Errorf("stream error = %v", err)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "mock-embed",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 || resp.Data[1].Index != 1 || len(resp.Data[1].Embedding) != 3 || resp.Data[1].Embedding[2] != -1.25 ||
			resp.Usage.PromptTokens != 4 {
			t.Errorf("embeddings = %s", resp.RawJSON())
		}
	})

	t.Run("embeddings of token arrays", func(t *testing.T) {
		for name, in := range map[string]openai.EmbeddingNewParamsInputUnion{
			"arrays": {OfArrayOfTokenArrays: [][]int64{{9906, 1917}, {15339}}},
			"array":  {OfArrayOfTokens: []int64{9906, 1917}},
		} {
			resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "mock-embed", Input: in})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			inputs := max(len(in.OfArrayOfTokenArrays), 1)
			if len(resp.Data) != inputs || resp.Data[inputs-1].Index != int64(inputs-1) || resp.Usage.PromptTokens != int64(2*inputs) {
				t.Errorf("%s: embeddings = %s", name, resp.RawJSON())
			}
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID+"/"+m.OwnedBy)
		}
		if strings.Join(ids, " ") != "mock-chat/mock mock/tidygate mock-embed/mock" {
			t.Errorf("models = %v", ids)
		}
		m, err := client.Models.Get(ctx, "mock")
		if err != nil || m.ID != "mock" || m.OwnedBy != "tidygate" {
			t.Errorf("models.Get(mock) = %+v, %v", m, err)
		}
		_, err = client.Models.Get(ctx, "gpt-nope")
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 404 || e.Code != "model_not_found" {
			t.Errorf("models.Get(gpt-nope) error = %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		client := sdkClient(t, &fakeGateway{chat: func(_ context.Context, req domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{}, &domain.Error{Kind: domain.KindNotFound, Param: "model", Code: "model_not_found", Message: "no such model"}
		}})
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "nope", Messages: hi})
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 404 || e.Code != "model_not_found" || e.Param != "model" || e.Message != "no such model" {
			t.Errorf("error = %v", err)
		}
		_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "mock-chat", Messages: hi, Temperature: openai.Float(7)})
		if !errors.As(err, &e) || e.StatusCode != 400 || e.Param != "temperature" {
			t.Errorf("error = %v", err)
		}
	})
}

// sdkClient returns an OpenAI SDK client, without retries, for a server
// running the handler over gw.
func sdkClient(t *testing.T, gw *fakeGateway) openai.Client {
	t.Helper()
	srv := httptest.NewServer(newRig(t, gw, httpapi.Options{}).h)
	t.Cleanup(srv.Close)
	return openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey(goodKey),
		option.WithHeader("X-Audit-Reason", "sdk test"), option.WithMaxRetries(0))
}
