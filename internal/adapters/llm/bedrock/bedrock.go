// Package bedrock calls Amazon Bedrock through the official SDK,
// github.com/aws/aws-sdk-go-v2/service/bedrockruntime: chat through the
// Converse and ConverseStream APIs, which speak one format for every chat
// model, and embeddings through InvokeModel for the two embedding families
// whose formats it knows. One client serves all calls; the SDK's own
// retries are off (the gateway retries). Credentials come from the standard
// AWS chain (environment, shared files, SSO, web identity, container and
// instance roles), resolved when a call needs them.
//
// A conversation is translated in full (see converseInput): system and
// developer messages become the system parameter; the other messages
// alternating turns of content blocks — text, images (inline bytes; Converse
// takes no image URLs, so an image by URL is refused by name), tool calls,
// tool results (text and images), and reasoning with its signature or
// redacted content; a tool message of plain text is text in a user turn.
// Tools (a strict one with strict) and tool choice go in toolConfig (auto,
// any or a named tool; tool choice none sends no tools, and is refused by
// name in a conversation that already holds tool calls); a JSON Schema
// response format in outputConfig.textFormat (json_object is refused by
// name); thinking and top_k, for Anthropic models only, as additional
// model request fields.
// Answers and streams come back as the same blocks, streamed tool calls
// (contentBlockStart, then input fragments) and reasoning included. Stop
// reasons are reported as OpenAI finish reasons; cache read and write
// tokens are reported as such.
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
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

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
	blocks := make([]domain.Block, 0, len(msg.Value.Content))
	for _, block := range msg.Value.Content {
		switch b := block.(type) {
		case *types.ContentBlockMemberText:
			blocks = append(blocks, domain.TextBlock(b.Value))
		case *types.ContentBlockMemberToolUse:
			args, err := fromDocument(b.Value.Input)
			if err != nil {
				return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("a tool call's input: %w", err))
			}
			blocks = append(blocks, domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{
				ID: aws.ToString(b.Value.ToolUseId), Name: aws.ToString(b.Value.Name), Arguments: args}})
		case *types.ContentBlockMemberReasoningContent:
			switch r := b.Value.(type) {
			case *types.ReasoningContentBlockMemberReasoningText:
				blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Text: aws.ToString(r.Value.Text),
					Reasoning: domain.Reasoning{Signature: aws.ToString(r.Value.Signature)}})
			case *types.ReasoningContentBlockMemberRedactedContent:
				blocks = append(blocks, domain.Block{Type: domain.BlockReasoning,
					Reasoning: domain.Reasoning{Encrypted: base64.StdEncoding.EncodeToString(r.Value)}})
			}
		}
	}
	usage, err := p.usage(out.Usage)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	resp := domain.ChatResponse{
		ID:           id,
		Model:        req.Model,
		FinishReason: llm.FinishReason(string(out.StopReason)),
		Usage:        usage,
		Created:      time.Now(),
	}
	resp.Content, resp.Blocks = llm.Answer(blocks)
	return resp, nil
}

// ownEventDecoder gives one stream a protocol of its own. The SDK's
// protocol, made once per client, decodes every stream's events into one
// shared payload buffer (smithy-go v1.28.9), so two streams read at the
// same time would overwrite each other's events: the race detector finds it
// within a few concurrent streams. The protocol costs one small allocation.
func ownEventDecoder(o *bedrockruntime.Options) {
	o.Protocol = restjson1.New(nil)
}

// ChatStream calls the ConverseStream API; the usage comes from the
// metadata event that ends the stream. Each content block is passed on
// under its index: text, tool calls (started by contentBlockStart, their
// input in JSON fragments), and reasoning text with its signature.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	in, err := p.converseInput(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	out, err := p.client.ConverseStream(ctx, streamInput(in), ownEventDecoder)
	if err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	stream := out.GetStream()
	defer stream.Close()

	resp := domain.ChatResponse{Model: req.Model, Created: time.Now()}
	resp.ID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	blocks := llm.NewStream(emit)
	var usage *types.TokenUsage
	for event := range stream.Events() {
		var err error
		switch ev := event.(type) {
		case *types.ConverseStreamOutputMemberContentBlockStart:
			if start, ok := ev.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
				err = blocks.Start(int(aws.ToInt32(ev.Value.ContentBlockIndex)), domain.Block{Type: domain.BlockToolCall,
					ToolCall: domain.ToolCall{ID: aws.ToString(start.Value.ToolUseId), Name: aws.ToString(start.Value.Name)}})
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			err = streamDelta(blocks, int(aws.ToInt32(ev.Value.ContentBlockIndex)), ev.Value.Delta)
		case *types.ConverseStreamOutputMemberMessageStop:
			resp.FinishReason = llm.FinishReason(string(ev.Value.StopReason))
		case *types.ConverseStreamOutputMemberMetadata:
			usage = ev.Value.Usage
		}
		if err != nil {
			var mismatch *llm.MismatchError
			if errors.As(err, &mismatch) {
				return domain.ChatResponse{}, p.classify.Malformed(err)
			}
			return domain.ChatResponse{}, err
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
	return blocks.Finish(resp)
}

// streamDelta passes one contentBlockDelta on.
func streamDelta(blocks *llm.Stream, index int, delta types.ContentBlockDelta) error {
	switch d := delta.(type) {
	case *types.ContentBlockDeltaMemberText:
		return blocks.TextAt(index, d.Value)
	case *types.ContentBlockDeltaMemberToolUse:
		return blocks.ArgumentsAt(index, aws.ToString(d.Value.Input))
	case *types.ContentBlockDeltaMemberReasoningContent:
		switch r := d.Value.(type) {
		case *types.ReasoningContentBlockDeltaMemberText:
			return blocks.ReasoningAt(index, r.Value)
		case *types.ReasoningContentBlockDeltaMemberSignature:
			return blocks.SignatureAt(index, r.Value)
		case *types.ReasoningContentBlockDeltaMemberRedactedContent:
			return blocks.RedactedAt(index, r.Value)
		}
	}
	return nil
}

// usage converts Bedrock's token counts, which count cache reads and
// writes apart from inputTokens, as Anthropic's do (see
// llm.UsageExcludingCache).
func (p *Provider) usage(u *types.TokenUsage) (domain.Usage, error) {
	if u.InputTokens == nil || u.OutputTokens == nil {
		return domain.Usage{}, p.classify.Malformed(errors.New("token counts missing"))
	}
	out, err := llm.UsageExcludingCache(int64(aws.ToInt32(u.InputTokens)), int64(aws.ToInt32(u.CacheReadInputTokens)),
		int64(aws.ToInt32(u.CacheWriteInputTokens)), int64(aws.ToInt32(u.OutputTokens)))
	if err != nil {
		return domain.Usage{}, p.classify.Malformed(err)
	}
	return out, nil
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
