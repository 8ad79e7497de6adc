package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
)

// GET /v1/responses/{id}/input_items lists the input items of the caller's
// stored response, as OpenAI's "list input items" does, a page at a time.
// tidygate keeps a response's input as domain messages
// (domain.StoredResponse.Input), not as the items its client sent, so the
// items are rendered from the messages, and their ids are tidygate's
// (respItemID with inputPos): the same on every call, so that paging by
// after and before is well defined. What the messages do not keep cannot
// be listed as it was sent:
//
//   - an assistant's message of several output_text parts is listed as one
//     message per part, as tidygate's own output is, and a refusal part as
//     output_text;
//   - an image's detail is listed as auto;
//   - a function call's output given as one input_text part is listed as a
//     string;
//   - items tidygate does not translate (hosted tools' calls, item
//     references, files), which a passed-through request may hold, are not
//     kept, so not listed.
//
// A response that continues another lists the whole conversation it
// answered: the earlier response's input and output, then its own input.
// The instructions are not items, as on OpenAI.

// respItemListJSON is OpenAI's list of a response's items.
type respItemListJSON struct {
	Object  string  `json:"object"` // list
	Data    []any   `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// respInMessageJSON is an input message item: text and images, of the
// user, the system or the developer.
type respInMessageJSON struct {
	Type    string `json:"type"` // message
	ID      string `json:"id"`
	Status  string `json:"status"`
	Role    string `json:"role"`
	Content []any  `json:"content"` // respInTextJSON, respInImageJSON
}

// respCallOutputJSON is a function_call_output item.
type respCallOutputJSON struct {
	Type   string `json:"type"` // function_call_output
	ID     string `json:"id"`
	Status string `json:"status"`
	CallID string `json:"call_id"`
	Output any    `json:"output"` // a string, or respInTextJSON and respInImageJSON parts
}

// respInTextJSON is an input_text content part.
type respInTextJSON struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// respInImageJSON is an input_image content part; its URL is null unless
// the client asked for it (include of message.input_image.image_url).
type respInImageJSON struct {
	Type     string  `json:"type"`
	ImageURL *string `json:"image_url"`
	Detail   string  `json:"detail"`
}

// inputItemsPages is how a response's input items are paged, as OpenAI's
// are (before is the cursor of earlier versions of OpenAI's reference).
var inputItemsPages = pager{defaultLimit: 20, maxLimit: 100, after: "after", before: "before"}

// respIncludables are the values of include that OpenAI defines. Only
// message.input_image.image_url changes the list: reasoning items carry
// their encrypted_content anyway, as tidygate's output items do, and the
// others concern items tidygate does not keep.
var respIncludables = []string{"file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
	"message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
	"reasoning.encrypted_content", "message.output_text.logprobs"}

// responseInputItems serves GET /v1/responses/{id}/input_items: a page of
// the caller's stored response's input items, newest first unless order is
// asc. A response the caller cannot have is not found, as GET
// /v1/responses/{id} answers; one stored without its text (content policy)
// is refused by the gateway, its input being unknown rather than empty.
// The id is looked up before the query is read, so that one the caller
// cannot have is not found whatever the query says.
func (h *handler) responseInputItems(w http.ResponseWriter, r *http.Request) {
	sr, err := h.gw.StoredResponseInput(r.Context(), exchangeOf(r).caller, httpin.PathValue(r, chi.URLParam(r, "id")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	images, err := includesImages(q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	items, ids := inputItems(sr, images)
	switch order := q.Get("order"); order {
	case "", "desc":
		slices.Reverse(items)
		slices.Reverse(ids)
	case "asc":
	default:
		h.writeError(w, r, domain.InvalidParam("order", "order must be asc or desc, not %q", order))
		return
	}
	from, to, more, err := inputItemsPages.page(q, len(ids), func(param, id string) (int, error) {
		i := slices.Index(ids, id)
		if i < 0 {
			return 0, domain.InvalidParam(param, "%s: response '%s' has no input item %q", param, sr.ID, id)
		}
		return i, nil
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list := respItemListJSON{Object: "list", Data: append([]any{}, items[from:to]...), HasMore: more}
	if from < to {
		list.FirstID, list.LastID = &ids[from], &ids[to-1]
	}
	h.writeJSON(w, http.StatusOK, list)
}

// includesImages reads include (include[] as the SDKs send it), and
// reports whether it asks for the input images' URLs.
func includesImages(q url.Values) (bool, error) {
	asked := slices.Concat(q["include"], q["include[]"])
	for _, v := range asked {
		if !slices.Contains(respIncludables, v) {
			return false, domain.InvalidParam("include", "include: %q is not one of %s", v, strings.Join(respIncludables, ", "))
		}
	}
	return slices.Contains(asked, "message.input_image.image_url"), nil
}

// inputItems is the input of sr as Responses items, in the conversation's
// order, and their ids. A message's text and images make one message
// item, up to its next block of another kind; an assistant's text, its
// function calls and its reasoning are the output items they were
// (toRespItem); a tool's result is a function_call_output item. images
// says whether an image's URL is given.
func inputItems(sr domain.StoredResponse, images bool) (items []any, ids []string) {
	requestID := strings.TrimPrefix(sr.ID, "resp_")
	add := func(id string, item any) {
		ids, items = append(ids, id), append(items, item)
	}
	message := func(role domain.Role) *respInMessageJSON {
		msg := &respInMessageJSON{Type: "message", ID: respItemID("msg", requestID, inputPos(len(ids))), Status: "completed",
			Role: string(role), Content: []any{}}
		add(msg.ID, msg)
		return msg
	}
	for _, m := range sr.Input {
		blocks := m.Parts()
		if len(blocks) == 0 {
			message(m.Role)
			continue
		}
		var msg *respInMessageJSON // the message item m's text and images go to; nil when none is open
		for _, b := range blocks {
			pos := inputPos(len(ids))
			switch {
			case b.Type == domain.BlockToolResult:
				item := respCallOutputJSON{Type: "function_call_output", ID: respItemID("fco", requestID, pos), Status: "completed",
					CallID: b.ToolResult.CallID, Output: toolOutput(b.ToolResult.Content, images)}
				add(item.ID, item)
			case b.Type == domain.BlockToolCall, b.Type == domain.BlockReasoning, b.Type == domain.BlockText && m.Role == domain.RoleAssistant:
				item := toRespItem(b, requestID, pos)
				add(item.ID, item)
			default: // text and images of the user, the system or the developer; an assistant's image
				if msg == nil {
					msg = message(m.Role)
				}
				msg.Content = append(msg.Content, inputPart(b, images))
				continue
			}
			msg = nil
		}
	}
	return items, ids
}

// toolOutput is a function_call_output item's output: a string for text
// alone, else content parts.
func toolOutput(content []domain.Block, images bool) any {
	switch {
	case len(content) == 0:
		return ""
	case len(content) == 1 && content[0].Type == domain.BlockText:
		return content[0].Text
	}
	parts := make([]any, 0, len(content))
	for _, b := range content {
		parts = append(parts, inputPart(b, images))
	}
	return parts
}

// inputPart is the content part of a text or an image block; images says
// whether an image's URL is given.
func inputPart(b domain.Block, images bool) any {
	if b.Type != domain.BlockImage {
		return respInTextJSON{Type: "input_text", Text: b.Text}
	}
	part := respInImageJSON{Type: "input_image", Detail: "auto"}
	if images {
		u := b.Image.AsURL()
		part.ImageURL = &u
	}
	return part
}
