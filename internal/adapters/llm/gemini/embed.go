package gemini

import (
	"context"
	"fmt"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// The embeddings operations: the Gemini API's batchEmbedContents, which
// reports no usage (it is estimated), and Vertex AI's predict, which
// counts each input's tokens.
type (
	batchEmbedRequest struct {
		Requests []embedContentRequest `json:"requests"`
	}
	embedContentRequest struct {
		Model                string  `json:"model"`
		Content              content `json:"content"`
		OutputDimensionality int     `json:"outputDimensionality,omitempty"`
	}
	batchEmbedResponse struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	predictRequest struct {
		Instances  []predictInstance `json:"instances"`
		Parameters *predictParams    `json:"parameters,omitempty"`
	}
	predictInstance struct {
		Content string `json:"content"`
	}
	predictParams struct {
		OutputDimensionality int `json:"outputDimensionality"`
	}
	predictResponse struct {
		Predictions []struct {
			Embeddings struct {
				Values     []float32 `json:"values"`
				Statistics struct {
					TokenCount float64 `json:"token_count"`
				} `json:"statistics"`
			} `json:"embeddings"`
		} `json:"predictions"`
	}
)

// batchEmbed calls the Gemini API's batchEmbedContents, one request an input.
func batchEmbed(ctx context.Context, p *Provider, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	body := batchEmbedRequest{Requests: make([]embedContentRequest, len(req.Inputs))}
	for i, in := range req.Inputs {
		body.Requests[i] = embedContentRequest{Model: "models/" + req.Model, Content: content{Parts: []part{{Text: in}}},
			OutputDimensionality: req.Dimensions}
	}
	var resp batchEmbedResponse
	if err := p.post.Call(ctx, p.url(req.Model, "batchEmbedContents"), body, &resp); err != nil {
		return domain.EmbedResponse{}, err
	}
	vectors := make([][]float32, len(resp.Embeddings))
	for i, e := range resp.Embeddings {
		vectors[i] = e.Values
	}
	out := domain.EmbedResponse{Model: req.Model, Vectors: vectors, Usage: domain.Usage{PromptTokens: llm.EstimateEmbedTokens(req)}}
	return out, p.checkVectors(req, vectors)
}

// predictEmbed calls Vertex AI's predict with one instance an input.
func predictEmbed(ctx context.Context, p *Provider, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	body := predictRequest{Instances: make([]predictInstance, len(req.Inputs))}
	for i, in := range req.Inputs {
		body.Instances[i] = predictInstance{Content: in}
	}
	if req.Dimensions > 0 {
		body.Parameters = &predictParams{OutputDimensionality: req.Dimensions}
	}
	var resp predictResponse
	if err := p.post.Call(ctx, p.url(req.Model, "predict"), body, &resp); err != nil {
		return domain.EmbedResponse{}, err
	}
	out := domain.EmbedResponse{Model: req.Model, Vectors: make([][]float32, len(resp.Predictions))}
	for i, pr := range resp.Predictions {
		out.Vectors[i] = pr.Embeddings.Values
		if n := pr.Embeddings.Statistics.TokenCount; n > 0 && n < 1<<31 {
			out.Usage.PromptTokens += int(n)
		}
	}
	if out.Usage.PromptTokens == 0 {
		out.Usage.PromptTokens = llm.EstimateEmbedTokens(req)
	}
	return out, p.checkVectors(req, out.Vectors)
}

// checkVectors refuses an answer without one non-empty vector per input.
func (p *Provider) checkVectors(req domain.EmbedRequest, vectors [][]float32) error {
	if len(vectors) != len(req.Inputs) {
		return p.classify.Malformed(fmt.Errorf("%d embeddings for %d inputs", len(vectors), len(req.Inputs)))
	}
	for i, v := range vectors {
		if len(v) == 0 {
			return p.classify.Malformed(fmt.Errorf("embedding %d is empty", i))
		}
	}
	return nil
}
