package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// Stored responses: a Responses API answer kept for the user whose key asked
// for it, which a later request may continue from (previous_response_id) and
// which only that user may read or delete. Another user's response, an
// expired one and a deleted one are all "not found", so that an id never
// tells anyone else that it exists. What a stored response keeps follows the
// content policy (Options.Content) that the call log follows too: without
// full text, a response is stored without its input and output, and cannot
// be continued from.

// maxResponseIDLen bounds an id worth looking up: "resp_" and a request id.
const maxResponseIDLen = 5 + 128

// StoresResponse reports whether a response is to be stored, given the
// request's own choice (nil when it made none, then Options.StoreByDefault
// decides): never when no response store is configured.
func (s *Service) StoresResponse(asked *bool) bool {
	if s.deps.Responses == nil {
		return false
	}
	if asked != nil {
		return *asked
	}
	return s.opts.StoreByDefault == nil || *s.opts.StoreByDefault
}

// StoreResponse keeps r for the caller's user until the retention
// (Options.ResponseRetention) has passed since r.CreatedAt. When the content
// policy keeps no text, r is stored without its input, output and settings.
func (s *Service) StoreResponse(ctx context.Context, c domain.Caller, r domain.StoredResponse) error {
	if s.deps.Responses == nil {
		return errNoResponseStore
	}
	r.Owner, r.KeyID = c.User, c.KeyID
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.opts.Now()
	}
	r.ExpiresAt = r.CreatedAt.Add(s.opts.ResponseRetention)
	r.WithContent = s.opts.Content.KeepsText()
	if !r.WithContent {
		r.Input, r.Output, r.Settings = nil, nil, nil
	}
	return s.deps.Responses.SaveResponse(ctx, r)
}

// PreviousResponse returns the caller's stored response id, for a request
// that continues from it. It is a domain.KindInvalid error (param
// previous_response_id, code previous_response_not_found), as OpenAI's 400
// is, when the caller's user has no such response, and a
// domain.KindInvalid error naming MLFLOW_LOG_CONTENT when the content policy
// keeps no text, so that history is never dropped silently.
func (s *Service) PreviousResponse(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error) {
	const param = "previous_response_id"
	switch {
	case s.deps.Responses == nil:
		return domain.StoredResponse{}, domain.InvalidParam(param,
			"previous_response_id is not supported: this gateway stores no responses; send the whole conversation in input")
	case !s.opts.Content.KeepsText():
		return domain.StoredResponse{}, contentNotKept(s.opts.Content)
	}
	r, err := s.storedResponse(ctx, c, id)
	if errors.Is(err, domain.KindNotFound) {
		return domain.StoredResponse{}, &domain.Error{Kind: domain.KindInvalid, Param: param, Code: "previous_response_not_found",
			Message: fmt.Sprintf("Previous response with id '%s' not found.", truncateID(id))}
	}
	if err != nil {
		return domain.StoredResponse{}, err
	}
	if !r.WithContent {
		return domain.StoredResponse{}, storedWithoutText(param, id, "previous_response_id cannot be used", "; send the whole conversation in input")
	}
	return r, nil
}

// codeContentNotKept is the code of a refusal to use a stored response's
// conversation text that tidygate did not keep.
const codeContentNotKept = "stored_content_not_kept"

// contentNotKept is the refusal of a previous_response_id under a content
// policy that keeps no text.
func contentNotKept(p domain.ContentPolicy) error {
	return &domain.Error{Kind: domain.KindInvalid, Param: "previous_response_id", Code: codeContentNotKept,
		Message: fmt.Sprintf("previous_response_id cannot be used: stored responses keep no conversation text under MLFLOW_LOG_CONTENT=%s "+
			"(only full keeps it); send the whole conversation in input", p)}
}

// storedWithoutText is the refusal of a use of the stored response id
// (named param in the request) that needs its conversation text, which it
// was stored without: refused says what cannot be done, and instead, when
// not empty, what to do instead.
func storedWithoutText(param, id, refused, instead string) error {
	return &domain.Error{Kind: domain.KindInvalid, Param: param, Code: codeContentNotKept,
		Message: fmt.Sprintf("%s: response '%s' was stored without its conversation text, "+
			"as MLFLOW_LOG_CONTENT was not full when it was made%s", refused, truncateID(id), instead)}
}

// StoredResponse returns the caller's stored response id, or a
// domain.KindNotFound error.
func (s *Service) StoredResponse(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error) {
	return s.storedResponse(ctx, c, id)
}

// StoredResponseInput returns the caller's stored response id for its
// input (domain.StoredResponse.Input: a continued response's history, then
// its request's own input), whatever the content policy is now, as
// StoredResponse serves its output. It is the same domain.KindNotFound
// error as StoredResponse's for a response the caller cannot have, and a
// domain.KindInvalid error (param response_id, code
// stored_content_not_kept) naming MLFLOW_LOG_CONTENT for one stored
// without its text, whose input is unknown rather than empty.
func (s *Service) StoredResponseInput(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error) {
	r, err := s.storedResponse(ctx, c, id)
	if err == nil && !r.WithContent {
		return domain.StoredResponse{}, storedWithoutText("response_id", id, "the input items cannot be listed", "")
	}
	return r, err
}

// DeleteStoredResponse deletes the caller's stored response id, or returns a
// domain.KindNotFound error.
func (s *Service) DeleteStoredResponse(ctx context.Context, c domain.Caller, id string) error {
	if !plausibleResponseID(id) || s.deps.Responses == nil {
		return responseNotFound(id)
	}
	err := s.deps.Responses.DeleteResponse(ctx, c.User, id, s.opts.Now())
	if errors.Is(err, domain.KindNotFound) {
		return responseNotFound(id)
	}
	return err
}

// SweepExpiredResponses deletes up to limit responses whose retention has
// passed, and returns how many it deleted. Expired responses are never
// served, swept or not: the sweep only gives their space back.
func (s *Service) SweepExpiredResponses(ctx context.Context, limit int) (int, error) {
	if s.deps.Responses == nil {
		return 0, nil
	}
	return s.deps.Responses.DeleteExpiredResponses(ctx, s.opts.Now(), limit)
}

func (s *Service) storedResponse(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error) {
	if !plausibleResponseID(id) || s.deps.Responses == nil {
		return domain.StoredResponse{}, responseNotFound(id)
	}
	r, err := s.deps.Responses.Response(ctx, c.User, id, s.opts.Now())
	if errors.Is(err, domain.KindNotFound) {
		return domain.StoredResponse{}, responseNotFound(id)
	}
	return r, err
}

// plausibleResponseID reports whether id could name a stored response, so
// that ids that cannot (too long, not "resp_…", or with bytes no id has)
// are not found without a lookup.
func plausibleResponseID(id string) bool {
	rest, ok := strings.CutPrefix(id, "resp_")
	if !ok || rest == "" || len(id) > maxResponseIDLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_.:+/=", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// responseNotFound is the one answer for a response the caller cannot
// have, whether its id is malformed, unknown, expired or another user's:
// OpenAI's wording, with no code, so that nothing tells these apart.
func responseNotFound(id string) error {
	return domain.Errorf(domain.KindNotFound, "Response with id '%s' not found.", truncateID(id))
}

// truncateID keeps an id quoted in a message short.
func truncateID(id string) string {
	if len(id) > maxResponseIDLen {
		return id[:maxResponseIDLen] + "…"
	}
	return id
}

var errNoResponseStore = &domain.Error{Kind: domain.KindUnavailable, Code: "responses_not_stored",
	Message: "this gateway stores no responses"}

// defaultResponseRetention is how long a stored response is kept by default: 30 days.
const defaultResponseRetention = 720 * time.Hour
