// Package bedrock calls Amazon Bedrock through the official SDK,
// github.com/aws/aws-sdk-go-v2/service/bedrockruntime: chat through the
// Converse and ConverseStream APIs, which speak one format for every chat
// model, and embeddings through InvokeModel for the two embedding families
// whose formats it knows. One client serves all calls; the SDK's own
// retries are off (the gateway retries). Credentials come from the standard
// AWS chain (environment, shared files, SSO, web identity, container and
// instance roles), resolved when a call needs them.
//
// A conversation is mapped as Converse requires (see llm.Conversation):
// system and developer messages become the system parameter, user and
// assistant messages alternating turns, a tool message text in a user turn.
// Stop reasons are reported as OpenAI finish reasons.
//
// Embeddings: amazon.titan-embed-text-v2 models take one input a call
// ({"inputText", "dimensions"} → {"embedding", "inputTextTokenCount"});
// cohere.embed-* models take up to 96 inputs a call ({"texts",
// "input_type": "search_document"} → {"embeddings"}), have a fixed
// dimension, and are costed by the token count Bedrock reports in the
// X-Amzn-Bedrock-Input-Token-Count header. Other models are refused with
// domain.KindInvalid.
package bedrock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Options configures the Bedrock adapter.
type Options struct {
	// Region is the AWS region to call, such as "us-east-1"; required.
	Region string
	// BaseURL overrides the regional endpoint, for tests and VPC endpoints;
	// empty means the SDK's endpoint for Region.
	BaseURL string
	// HTTPClient carries the calls; nil means the SDK's default client.
	HTTPClient *http.Client
	// Profile names the shared AWS configuration profile to load
	// credentials from; empty means the standard chain's choice.
	Profile string
}

// Provider calls Amazon Bedrock; it is safe for concurrent use.
type Provider struct {
	client   *bedrockruntime.Client
	classify llm.Classifier
}

var _ ports.Provider = (*Provider)(nil)

// New loads the AWS configuration (the standard credential chain, with the
// region and client given) and returns an adapter, or an error if the
// region is missing, the base URL is not an absolute http or https URL, or
// the shared AWS configuration cannot be loaded. ctx bounds the loading.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Region == "" {
		return nil, errors.New("bedrock: region is required")
	}
	if opts.BaseURL != "" {
		if u, err := url.Parse(opts.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bedrock: base URL %q is not an absolute http or https URL", opts.BaseURL)
		}
	}
	loadOpts := []func(*config.LoadOptions) error{config.WithRegion(opts.Region)}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opts.HTTPClient))
	}
	if opts.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(opts.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("bedrock: loading the AWS configuration: %w", err)
	}
	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.Retryer = aws.NopRetryer{}
		if opts.BaseURL != "" {
			o.BaseEndpoint = aws.String(opts.BaseURL)
		}
	})
	return &Provider{client: client, classify: llm.NewClassifier("bedrock", "")}, nil
}

// Chat calls the Converse API.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	in, err := p.converseInput(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	out, err := p.client.Converse(ctx, in)
	if err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok || out.Usage == nil || out.StopReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the answer lacks its message, usage or stop reason"))
	}
	var content strings.Builder
	for _, block := range msg.Value.Content {
		if text, ok := block.(*types.ContentBlockMemberText); ok {
			content.WriteString(text.Value)
		}
	}
	usage, err := p.usage(out.Usage)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	return domain.ChatResponse{
		ID:           id,
		Model:        req.Model,
		Content:      content.String(),
		FinishReason: llm.FinishReason(string(out.StopReason)),
		Usage:        usage,
		Created:      time.Now(),
	}, nil
}

// ChatStream calls the ConverseStream API; the usage comes from the
// metadata event that ends the stream.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	in, err := p.converseInput(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	out, err := p.client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: in.ModelId, Messages: in.Messages, System: in.System, InferenceConfig: in.InferenceConfig,
	})
	if err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	stream := out.GetStream()
	defer stream.Close()

	resp := domain.ChatResponse{Model: req.Model, Created: time.Now()}
	resp.ID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	text := llm.NewStream(emit)
	var usage *types.TokenUsage
	for event := range stream.Events() {
		switch ev := event.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if delta, ok := ev.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				if err := text.Text(delta.Value); err != nil {
					return domain.ChatResponse{}, err
				}
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			resp.FinishReason = llm.FinishReason(string(ev.Value.StopReason))
		case *types.ConverseStreamOutputMemberMetadata:
			usage = ev.Value.Usage
		}
	}
	if err := stream.Err(); err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	if resp.FinishReason == "" || usage == nil {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the stream ended before its messageStop and metadata events"))
	}
	if resp.Usage, err = p.usage(usage); err != nil {
		return domain.ChatResponse{}, err
	}
	return text.Finish(resp)
}

// converseInput maps the request onto Converse's: the model, the system
// prompt and turns, and the inference configuration with the output cap
// and temperature, top_p and stop sequences only when set.
func (p *Provider) converseInput(req domain.ChatRequest) (*bedrockruntime.ConverseInput, error) {
	if err := p.classify.TextOnly(req); err != nil {
		return nil, err
	}
	system, turns := llm.Conversation(req.Messages)
	if len(turns) == 0 {
		return nil, p.classify.Invalid("the request has no user or assistant message with content")
	}
	if req.MaxTokens > math.MaxInt32 {
		return nil, domain.InvalidParam("max_tokens", "bedrock takes max_tokens up to %d", math.MaxInt32)
	}
	in := &bedrockruntime.ConverseInput{
		ModelId:         aws.String(req.Model),
		Messages:        make([]types.Message, len(turns)),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(req.MaxTokens))},
	}
	for _, s := range system {
		in.System = append(in.System, &types.SystemContentBlockMemberText{Value: s})
	}
	for i, turn := range turns {
		role := types.ConversationRoleUser
		if turn.Assistant {
			role = types.ConversationRoleAssistant
		}
		blocks := make([]types.ContentBlock, len(turn.Texts))
		for j, text := range turn.Texts {
			blocks[j] = &types.ContentBlockMemberText{Value: text}
		}
		in.Messages[i] = types.Message{Role: role, Content: blocks}
	}
	if req.Temperature != nil {
		in.InferenceConfig.Temperature = aws.Float32(float32(*req.Temperature))
	}
	if req.TopP != nil {
		in.InferenceConfig.TopP = aws.Float32(float32(*req.TopP))
	}
	in.InferenceConfig.StopSequences = req.Stop
	return in, nil
}

// usage converts Bedrock's token counts. tidygate sets no cache points, so
// the cache counts are normally zero; when present they are input the call
// consumed.
func (p *Provider) usage(u *types.TokenUsage) (domain.Usage, error) {
	prompt := int(aws.ToInt32(u.InputTokens)) + int(aws.ToInt32(u.CacheReadInputTokens)) + int(aws.ToInt32(u.CacheWriteInputTokens))
	completion := int(aws.ToInt32(u.OutputTokens))
	if u.InputTokens == nil || u.OutputTokens == nil || prompt < 0 || completion < 0 {
		return domain.Usage{}, p.classify.Malformed(errors.New("token counts missing or negative"))
	}
	return domain.Usage{PromptTokens: prompt, CompletionTokens: completion}, nil
}

// codeStatus returns the HTTP status an error code stands for when the code
// says more than the status (a quota exceeded is answered with 400 but is a
// rate limit) or there is no status (an exception inside an event stream);
// zero when the code adds nothing.
func codeStatus(code string) int {
	switch code {
	case "ThrottlingException", "ServiceQuotaExceededException":
		return http.StatusTooManyRequests
	case "ValidationException":
		return http.StatusBadRequest
	case "ResourceNotFoundException":
		return http.StatusNotFound
	case "AccessDeniedException", "UnrecognizedClientException":
		return http.StatusForbidden
	}
	return 0
}

// failure classifies a failed call: an error answer by its code and HTTP
// status, an exception inside a stream by its code, anything else as a
// transport failure or a malformed answer.
func (p *Provider) failure(err error) error {
	var apiErr smithy.APIError
	code, detail := "", ""
	if errors.As(err, &apiErr) {
		code, detail = apiErr.ErrorCode(), apiErr.ErrorMessage()
		if detail == "" {
			detail = code
		}
	}
	status := codeStatus(code)
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusBadRequest {
		if status == 0 {
			status = respErr.HTTPStatusCode()
		}
		var header http.Header
		if respErr.Response != nil {
			header = respErr.Response.Header
		}
		return p.classify.HTTP(status, header, detail)
	}
	switch {
	case status != 0:
		return p.classify.HTTP(status, nil, detail)
	case apiErr != nil:
		return p.classify.Reported(detail)
	}
	return p.classify.Failure(err)
}
