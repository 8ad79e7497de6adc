package httpapi

import (
	"net/url"
	"strconv"

	"github.com/tidygate/tidygate/internal/domain"
)

// pager is how a list served a page at a time by cursor is paged (the
// Anthropic dialect's models, a stored response's input items): a page
// holds at most limit items (a query parameter) from the list's start, or
// from after the item the after cursor names, or up to the item the before
// cursor names. The list is in the order the client reads it.
type pager struct {
	defaultLimit, maxLimit int
	after, before          string // the cursors' query parameters
}

// page returns the page [from, to) of a list of n items that q asks for,
// and whether the list goes on past the page the way the client is
// paging: towards its end, or, paging before an item, towards its start.
// at returns the index of the item a cursor's value id names, or an error
// naming the cursor's parameter when the list has no such item.
func (p pager) page(q url.Values, n int, at func(param, id string) (int, error)) (from, to int, more bool, err error) {
	limit := p.defaultLimit
	if s := q.Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit < 1 || limit > p.maxLimit {
			return 0, 0, false, domain.InvalidParam("limit", "limit: Input should be a whole number from 1 to %d", p.maxLimit)
		}
	}
	after, before := q.Get(p.after), q.Get(p.before)
	switch {
	case after != "" && before != "":
		return 0, 0, false, domain.InvalidParam(p.before, "give %s or %s, not both", p.after, p.before)
	case after != "":
		i, err := at(p.after, after)
		if err != nil {
			return 0, 0, false, err
		}
		from, to = i+1, min(i+1+limit, n)
	case before != "":
		i, err := at(p.before, before)
		if err != nil {
			return 0, 0, false, err
		}
		from, to = max(i-limit, 0), i
		return from, to, from > 0, nil
	default:
		from, to = 0, min(limit, n)
	}
	return from, to, to < n, nil
}
