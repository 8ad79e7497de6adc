package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// Pass-through: every chat dialect tidygate serves is also a provider's own
// (Anthropic Messages, OpenAI chat completions and Responses). The edge
// hands the gateway the body as the client sent it beside its decoded form
// (gateway.ChatNative); a model whose provider takes the dialect as it is
// gets the body, and its answer comes back as the provider's bytes with the
// model renamed. Any other model gets the request translated, and the edge
// writes the answer in the dialect as it always did.

// modeHeader says how the answer was obtained: "pass-through" (the
// provider's own bytes; for a token count, the provider's count of the
// request as the client sent it) or "translated" (written by tidygate);
// "estimated" for a token count that is tidygate's estimate.
const modeHeader = "X-Tidygate-Mode"

const (
	modePassThrough = "pass-through"
	modeTranslated  = "translated"
	modeEstimated   = "estimated"
)

// nativeHeaderPrefixes select the client's headers offered to the provider:
// each provider adapter lets through those of its dialect (the version and
// beta headers), never credentials.
var nativeHeaderPrefixes = []string{"Anthropic-", "Openai-"}

// passOnly notes the first feature of a request that the provider serves
// itself and the domain request leaves out (see domain.ProviderOnly): then
// only a model whose provider takes the body as it is can serve the
// request. Each dialect's decoder has one.
type passOnly struct{ only error }

// providerOnly notes the feature named param in the request, unless one is
// noted already.
func (p *passOnly) providerOnly(param, feature string) {
	if p.only == nil {
		p.only = domain.ProviderOnly(param, feature)
	}
}

// toolArguments returns args, the arguments of a tool call in the history
// named param, as the domain request holds them: a JSON object, none being
// the empty one. Any other string (a model's output cut short, say) is
// OpenAI's to take, as any other provider needs an object: it is noted,
// and the domain request, which validates, holds the empty object instead.
func (p *passOnly) toolArguments(param, args string) string {
	if strings.TrimSpace(args) == "" {
		return domain.ToolArguments("")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(args), &obj) != nil || obj == nil {
		p.providerOnly(param, "a tool call whose arguments are not a JSON object")
		return domain.ToolArguments("")
	}
	return args
}

// nativeRequest is the request as the client sent it, for the gateway.
func nativeRequest(r *http.Request, d domain.Dialect, body []byte, stream bool) domain.NativeRequest {
	var header map[string][]string // made only for a header to pass
	for name, values := range r.Header {
		for _, prefix := range nativeHeaderPrefixes {
			if strings.HasPrefix(name, prefix) {
				if header == nil {
					header = map[string][]string{}
				}
				header[name] = values
			}
		}
	}
	return domain.NativeRequest{Dialect: d, Body: body, Header: header, Stream: stream}
}

// writeNative writes a passed-through answer: the provider's body, with the
// headers that say who answered.
func (h *handler) writeNative(w http.ResponseWriter, res gateway.ChatResult) {
	setResultHeaders(w, res.Result, modePassThrough)
	ct := res.Native.ContentType
	if ct == "" {
		ct = "application/json"
	}
	setHeaders(w, "Content-Type", ct, "Content-Length", strconv.Itoa(len(res.Native.Body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Native.Body)
}

// nativeStream writes a passed-through event stream: each event as the
// provider sent it.
type nativeStream struct {
	sse
	started bool
}

// event sends the headers first, once, then the event.
func (s *nativeStream) event(ev domain.NativeEvent) error {
	if !s.started {
		s.started = true
		s.w.Header().Set(modeHeader, modePassThrough)
		s.begin()
	}
	return s.write(ev.Raw)
}
