package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.ResponseStore = (*ResponseStore)(nil)

// ResponseStore keeps the Responses API's stored responses in
// tidygate_responses (see Migrate). A lookup never returns an expired row;
// DeleteExpiredResponses removes them in bounded batches.
type ResponseStore struct {
	db Conns
}

// NewResponseStore returns a response store on db's tables.
func NewResponseStore(db Conns) *ResponseStore {
	return &ResponseStore{db: db}
}

// responseBody is the JSON document in the body column: the response's
// metadata, conversation and answer.
type responseBody struct {
	Model             string        `json:"model"`
	FinishReason      string        `json:"finish_reason,omitempty"`
	Usage             usageBody     `json:"usage"`
	ParallelToolCalls bool          `json:"parallel_tool_calls"`
	WithContent       bool          `json:"with_content"`
	Input             []messageBody `json:"input,omitempty"`
	Output            []blockBody   `json:"output,omitempty"`
	Settings          []byte        `json:"settings,omitempty"` // the dialect's, unread here
}

type usageBody struct {
	Prompt     int `json:"prompt"`
	Completion int `json:"completion"`
	CacheRead  int `json:"cache_read,omitempty"`
	CacheWrite int `json:"cache_write,omitempty"`
	Reasoning  int `json:"reasoning,omitempty"`
}

type messageBody struct {
	Role    string      `json:"role"`
	Content string      `json:"content,omitempty"`
	Name    string      `json:"name,omitempty"`
	Blocks  []blockBody `json:"blocks,omitempty"`
	// HasBlocks tells an empty block list from none (a message given as
	// plain content).
	HasBlocks bool `json:"has_blocks,omitempty"`
}

type blockBody struct {
	Type      string      `json:"type"`
	Text      string      `json:"text,omitempty"`
	ImageURL  string      `json:"image_url,omitempty"`
	MediaType string      `json:"media_type,omitempty"`
	Data      string      `json:"data,omitempty"`
	CallID    string      `json:"call_id,omitempty"`
	Name      string      `json:"name,omitempty"`
	Arguments string      `json:"arguments,omitempty"`
	Result    []blockBody `json:"result,omitempty"`
	IsError   bool        `json:"is_error,omitempty"`
	Signature string      `json:"signature,omitempty"`
	Encrypted string      `json:"encrypted,omitempty"`
}

func toBlockBodies(bs []domain.Block) []blockBody {
	if bs == nil {
		return nil
	}
	out := make([]blockBody, 0, len(bs))
	for _, b := range bs {
		w := blockBody{Type: string(b.Type), Text: b.Text, ImageURL: b.Image.URL, MediaType: b.Image.MediaType, Data: b.Image.Data,
			Signature: b.Reasoning.Signature, Encrypted: b.Reasoning.Encrypted}
		switch b.Type {
		case domain.BlockToolCall:
			w.CallID, w.Name, w.Arguments = b.ToolCall.ID, b.ToolCall.Name, b.ToolCall.Arguments
		case domain.BlockToolResult:
			w.CallID, w.IsError, w.Result = b.ToolResult.CallID, b.ToolResult.IsError, toBlockBodies(b.ToolResult.Content)
		}
		out = append(out, w)
	}
	return out
}

func fromBlockBodies(ws []blockBody) []domain.Block {
	if ws == nil {
		return nil
	}
	out := make([]domain.Block, 0, len(ws))
	for _, w := range ws {
		b := domain.Block{Type: domain.BlockType(w.Type), Text: w.Text,
			Image:     domain.Image{URL: w.ImageURL, MediaType: w.MediaType, Data: w.Data},
			Reasoning: domain.Reasoning{Signature: w.Signature, Encrypted: w.Encrypted}}
		switch b.Type {
		case domain.BlockToolCall:
			b.ToolCall = domain.ToolCall{ID: w.CallID, Name: w.Name, Arguments: w.Arguments}
		case domain.BlockToolResult:
			b.ToolResult = domain.ToolResult{CallID: w.CallID, IsError: w.IsError, Content: fromBlockBodies(w.Result)}
		}
		out = append(out, b)
	}
	return out
}

func encodeResponse(r domain.StoredResponse) ([]byte, error) {
	u := r.Usage
	w := responseBody{Model: r.Model, FinishReason: r.FinishReason, ParallelToolCalls: r.ParallelToolCalls, WithContent: r.WithContent,
		Usage:  usageBody{Prompt: u.PromptTokens, Completion: u.CompletionTokens, CacheRead: u.CacheReadTokens, CacheWrite: u.CacheWriteTokens, Reasoning: u.ReasoningTokens},
		Output: toBlockBodies(r.Output), Settings: r.Settings}
	for _, m := range r.Input {
		w.Input = append(w.Input, messageBody{Role: string(m.Role), Content: m.Content, Name: m.Name,
			Blocks: toBlockBodies(m.Blocks), HasBlocks: m.Blocks != nil})
	}
	return json.Marshal(w)
}

func decodeResponse(body []byte, r *domain.StoredResponse) error {
	var w responseBody
	if err := json.Unmarshal(body, &w); err != nil {
		return err
	}
	u := w.Usage
	r.Model, r.FinishReason, r.ParallelToolCalls, r.WithContent = w.Model, w.FinishReason, w.ParallelToolCalls, w.WithContent
	r.Usage = domain.Usage{PromptTokens: u.Prompt, CompletionTokens: u.Completion, CacheReadTokens: u.CacheRead,
		CacheWriteTokens: u.CacheWrite, ReasoningTokens: u.Reasoning}
	r.Output, r.Settings = fromBlockBodies(w.Output), w.Settings
	for _, m := range w.Input {
		msg := domain.Message{Role: domain.Role(m.Role), Content: m.Content, Name: m.Name, Blocks: fromBlockBodies(m.Blocks)}
		if m.HasBlocks && msg.Blocks == nil {
			msg.Blocks = []domain.Block{}
		}
		r.Input = append(r.Input, msg)
	}
	return nil
}

// SaveResponse stores r; an ID already stored is a domain.KindInvalid error.
func (s *ResponseStore) SaveResponse(ctx context.Context, r domain.StoredResponse) error {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	for _, f := range []struct{ param, value string }{{"id", r.ID}, {"owner", r.Owner}, {"key_id", r.KeyID}} {
		if err := checkName(f.param, f.value, f.param != "key_id"); err != nil {
			return err
		}
	}
	body, err := encodeResponse(r)
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "cannot encode the response to store")
	}
	return pgkit.WithConn(ctx, s.db, "store the response", func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, `INSERT INTO tidygate_responses (id, owner_id, key_id, created_at, expires_at, body)
VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.Owner, r.KeyID, r.CreatedAt, r.ExpiresAt, body)
		return err
	})
}

// Response returns owner's response id unless it has expired at now.
func (s *ResponseStore) Response(ctx context.Context, owner, id string, now time.Time) (domain.StoredResponse, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	r := domain.StoredResponse{ID: id, Owner: owner}
	var body []byte
	err := pgkit.WithConn(ctx, s.db, "read the stored response", func(conn *pgxpool.Conn) error {
		err := conn.QueryRow(ctx, `SELECT key_id, created_at, expires_at, body FROM tidygate_responses
WHERE id = $1 AND owner_id = $2 AND expires_at > $3`, id, owner, now).Scan(&r.KeyID, &r.CreatedAt, &r.ExpiresAt, &body)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(id)
		}
		return err
	})
	if err != nil {
		return domain.StoredResponse{}, err
	}
	if err := decodeResponse(body, &r); err != nil {
		return domain.StoredResponse{}, domain.Wrap(domain.KindInternal, err, "cannot decode the stored response "+id)
	}
	r.CreatedAt, r.ExpiresAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC()
	return r, nil
}

// DeleteResponse deletes owner's response id unless it has expired at now.
func (s *ResponseStore) DeleteResponse(ctx context.Context, owner, id string, now time.Time) error {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	return pgkit.WithConn(ctx, s.db, "delete the stored response", func(conn *pgxpool.Conn) error {
		tag, err := conn.Exec(ctx, `DELETE FROM tidygate_responses WHERE id = $1 AND owner_id = $2 AND expires_at > $3`, id, owner, now)
		if err == nil && tag.RowsAffected() == 0 {
			return notFound(id)
		}
		return err
	})
}

// DeleteExpiredResponses deletes at most limit responses expired at now,
// oldest first, in one statement.
func (s *ResponseStore) DeleteExpiredResponses(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var n int64
	err := pgkit.WithConn(ctx, s.db, "delete expired responses", func(conn *pgxpool.Conn) error {
		tag, err := conn.Exec(ctx, `DELETE FROM tidygate_responses WHERE id IN (
	SELECT id FROM tidygate_responses WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

func notFound(id string) error {
	return domain.Errorf(domain.KindNotFound, "no response with id %q", id)
}
