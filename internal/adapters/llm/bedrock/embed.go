package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// The embedding model families Embed knows, by model id prefix.
const (
	titanV2Prefix = "amazon.titan-embed-text-v2"
	coherePrefix  = "cohere.embed-"
)

// cohereBatch is the most texts Cohere's embedding models take in one call.
const cohereBatch = 96

// tokenCountHeader is where InvokeModel reports the input token count.
const tokenCountHeader = "X-Amzn-Bedrock-Input-Token-Count"

// titanRequest and titanResponse are Titan Text Embeddings V2's body formats.
type titanRequest struct {
	InputText  string `json:"inputText"`
	Dimensions int    `json:"dimensions,omitempty"`
}

type titanResponse struct {
	Embedding           []float32 `json:"embedding"`
	InputTextTokenCount int       `json:"inputTextTokenCount"`
}

// cohereRequest and cohereResponse are Cohere Embed's body formats on Bedrock.
type cohereRequest struct {
	Texts     []string `json:"texts"`
	InputType string   `json:"input_type"`
}

type cohereResponse struct {
	Embeddings [][]float32 `json:"embeddings"`
}

// Embed calls InvokeModel with the body format of the model's family;
// both families take text only, so a request of token ids is refused.
func (p *Provider) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	if err := p.classify.TextInputs(req); err != nil {
		return domain.EmbedResponse{}, err
	}
	out := domain.EmbedResponse{Model: req.Model, Vectors: make([][]float32, 0, len(req.Inputs))}
	switch {
	case strings.HasPrefix(req.Model, titanV2Prefix):
		for _, in := range req.Inputs {
			var resp titanResponse
			if _, err := p.invoke(ctx, req.Model, titanRequest{InputText: in, Dimensions: req.Dimensions}, &resp); err != nil {
				return domain.EmbedResponse{}, err
			}
			if len(resp.Embedding) == 0 || resp.InputTextTokenCount < 0 {
				return domain.EmbedResponse{}, p.classify.Malformed(errors.New("an empty embedding or a negative token count"))
			}
			out.Vectors = append(out.Vectors, resp.Embedding)
			out.Usage.PromptTokens += resp.InputTextTokenCount
		}
	case strings.HasPrefix(req.Model, coherePrefix):
		if req.Dimensions != 0 {
			return domain.EmbedResponse{}, domain.InvalidParam("dimensions", "bedrock: %s has a fixed dimension; do not set dimensions", req.Model)
		}
		for batch := range slices.Chunk(req.Inputs, cohereBatch) {
			var resp cohereResponse
			tokens, err := p.invoke(ctx, req.Model, cohereRequest{Texts: batch, InputType: "search_document"}, &resp)
			if err != nil {
				return domain.EmbedResponse{}, err
			}
			if len(resp.Embeddings) != len(batch) {
				return domain.EmbedResponse{}, p.classify.Malformed(fmt.Errorf("%d embeddings for %d texts", len(resp.Embeddings), len(batch)))
			}
			for _, v := range resp.Embeddings {
				if len(v) == 0 {
					return domain.EmbedResponse{}, p.classify.Malformed(errors.New("an empty embedding"))
				}
			}
			if tokens < 0 {
				// Bedrock did not report the count: estimate, so that the call is costed.
				tokens = 0
				for _, text := range batch {
					tokens += llm.EstimateTokens(text)
				}
			}
			out.Vectors = append(out.Vectors, resp.Embeddings...)
			out.Usage.PromptTokens += tokens
		}
	default:
		return domain.EmbedResponse{}, p.classify.Invalid("model %q is not an embedding model tidygate can call; use %s:0 or %s*",
			req.Model, titanV2Prefix, coherePrefix)
	}
	return out, nil
}

// invoke calls InvokeModel with body as JSON, decodes the answer into
// into, and returns the input token count Bedrock reported, or -1.
func (p *Provider) invoke(ctx context.Context, model string, body, into any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("bedrock: encoding the request: %w", err)
	}
	out, err := p.client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(model),
		Body:        payload,
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
	})
	if err != nil {
		return 0, p.failure(err)
	}
	if err := json.Unmarshal(out.Body, into); err != nil {
		return 0, p.classify.Malformed(err)
	}
	tokens := -1
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		if n, err := strconv.Atoi(raw.Header.Get(tokenCountHeader)); err == nil && n >= 0 {
			tokens = n
		}
	}
	return tokens, nil
}
