package contract

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestResponseStore checks that a response store gives a stored response
// back whole to its owner only, never after it expires or is deleted, and
// that its sweep of expired responses does at most the work it is given.
// newStore returns an empty store.
func TestResponseStore(t *testing.T, newStore func(t *testing.T) ports.ResponseStore) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

	t.Run("OwnerGetsItBackWhole", func(t *testing.T) {
		s := newStore(t)
		want := storedResponse("resp_whole", "alice", now)
		save(t, s, want)
		got, err := s.Response(ctx, "alice", want.ID, now)
		if err != nil {
			t.Fatalf("Response: %v", err)
		}
		if !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("times = %v, %v; want %v, %v", got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt)
		}
		got.CreatedAt, got.ExpiresAt = want.CreatedAt, want.ExpiresAt
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Response =\n%+v\nwant\n%+v", got, want)
		}
	})

	t.Run("WithoutContent", func(t *testing.T) {
		s := newStore(t)
		want := storedResponse("resp_bare", "alice", now)
		want.WithContent, want.Input, want.Output, want.Settings = false, nil, nil, nil
		save(t, s, want)
		got, err := s.Response(ctx, "alice", want.ID, now)
		if err != nil {
			t.Fatalf("Response: %v", err)
		}
		if got.WithContent || len(got.Input) != 0 || len(got.Output) != 0 || got.Usage != want.Usage {
			t.Errorf("Response = %+v; want no content and usage %+v", got, want.Usage)
		}
	})

	t.Run("AnotherUserFindsNothing", func(t *testing.T) {
		s := newStore(t)
		r := storedResponse("resp_theirs", "alice", now)
		save(t, s, r)
		if _, err := s.Response(ctx, "mallory", r.ID, now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Response by another user: %v; want not found", err)
		}
		if err := s.DeleteResponse(ctx, "mallory", r.ID, now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("DeleteResponse by another user: %v; want not found", err)
		}
		if _, err := s.Response(ctx, "alice", r.ID, now); err != nil {
			t.Errorf("after another user's delete, the owner's Response: %v", err)
		}
	})

	t.Run("UnknownIDIsNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Response(ctx, "alice", "resp_nothing", now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Response: %v; want not found", err)
		}
		if err := s.DeleteResponse(ctx, "alice", "resp_nothing", now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("DeleteResponse: %v; want not found", err)
		}
	})

	t.Run("DeletedIsGone", func(t *testing.T) {
		s := newStore(t)
		r := storedResponse("resp_deleted", "alice", now)
		save(t, s, r)
		if err := s.DeleteResponse(ctx, "alice", r.ID, now); err != nil {
			t.Fatalf("DeleteResponse: %v", err)
		}
		if _, err := s.Response(ctx, "alice", r.ID, now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Response after delete: %v; want not found", err)
		}
		if err := s.DeleteResponse(ctx, "alice", r.ID, now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("second DeleteResponse: %v; want not found", err)
		}
	})

	t.Run("ExpiredIsNotServed", func(t *testing.T) {
		s := newStore(t)
		r := storedResponse("resp_expired", "alice", now)
		save(t, s, r)
		if _, err := s.Response(ctx, "alice", r.ID, r.ExpiresAt.Add(-time.Microsecond)); err != nil {
			t.Errorf("Response just before expiry: %v", err)
		}
		if _, err := s.Response(ctx, "alice", r.ID, r.ExpiresAt); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Response at expiry: %v; want not found", err)
		}
		if err := s.DeleteResponse(ctx, "alice", r.ID, r.ExpiresAt); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("DeleteResponse at expiry: %v; want not found", err)
		}
	})

	t.Run("SweepIsBounded", func(t *testing.T) {
		s := newStore(t)
		for i := range 5 {
			r := storedResponse("resp_old_"+strconv.Itoa(i), "alice", now)
			r.ExpiresAt = now.Add(time.Duration(i) * time.Second)
			save(t, s, r)
		}
		live := storedResponse("resp_live", "alice", now)
		live.ExpiresAt = now.Add(time.Hour)
		save(t, s, live)
		at := now.Add(10 * time.Second)
		n, err := s.DeleteExpiredResponses(ctx, at, 3)
		if err != nil || n != 3 {
			t.Fatalf("DeleteExpiredResponses(limit 3) = %d, %v; want 3", n, err)
		}
		n, err = s.DeleteExpiredResponses(ctx, at, 100)
		if err != nil || n != 2 {
			t.Fatalf("second DeleteExpiredResponses = %d, %v; want the 2 left", n, err)
		}
		if n, err = s.DeleteExpiredResponses(ctx, at, 100); err != nil || n != 0 {
			t.Fatalf("third DeleteExpiredResponses = %d, %v; want 0", n, err)
		}
		if _, err := s.Response(ctx, "alice", live.ID, at); err != nil {
			t.Errorf("the unexpired response after the sweep: %v", err)
		}
	})

	t.Run("AnIDIsStoredOnce", func(t *testing.T) {
		s := newStore(t)
		r := storedResponse("resp_once", "alice", now)
		save(t, s, r)
		r.Owner = "mallory"
		if err := s.SaveResponse(ctx, r); err == nil {
			t.Errorf("a second SaveResponse with the same id succeeded")
		}
		if _, err := s.Response(ctx, "mallory", r.ID, now); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("the second save's owner finds it: %v", err)
		}
	})
}

func save(t *testing.T, s ports.ResponseStore, r domain.StoredResponse) {
	t.Helper()
	if err := s.SaveResponse(context.Background(), r); err != nil {
		t.Fatalf("SaveResponse(%s): %v", r.ID, err)
	}
}

// storedResponse is a response with every kind of content, created at now
// (whole microseconds, as PostgreSQL keeps them) and kept for a day. Its
// text holds a NUL character, which a store must keep too.
func storedResponse(id, owner string, now time.Time) domain.StoredResponse {
	out := []domain.Block{
		{Type: domain.BlockReasoning, Text: "thinking", Reasoning: domain.Reasoning{Encrypted: "enc", Signature: "sig"}},
		domain.TextBlock("Let me look."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "lookup", Arguments: `{"q":"x"}`}},
	}
	return domain.StoredResponse{
		ID: id, Owner: owner, KeyID: "key_1", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Model: "mock-chat", FinishReason: domain.FinishToolCalls, ParallelToolCalls: true,
		Usage:       domain.Usage{PromptTokens: 12, CompletionTokens: 7, CacheReadTokens: 3, CacheWriteTokens: 2, ReasoningTokens: 1},
		WithContent: true,
		Settings:    []byte(`{"tools":[],"tool_choice":"auto","instructions":"<be brief>"}`),
		Input: []domain.Message{
			{Role: domain.RoleSystem, Content: "be brief", Blocks: []domain.Block{domain.TextBlock("be brief")}},
			{Role: domain.RoleUser, Content: "hello\x00there", Blocks: []domain.Block{
				domain.TextBlock("hello\x00there"),
				{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "aGk="}},
				{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/a.png"}},
			}},
			{Role: domain.RoleAssistant, Content: "", Blocks: []domain.Block{
				{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_0", Name: "lookup", Arguments: `{}`}}}},
			{Role: domain.RoleUser, Content: "", Blocks: []domain.Block{{Type: domain.BlockToolResult,
				ToolResult: domain.ToolResult{CallID: "call_0", IsError: true, Content: []domain.Block{domain.TextBlock("no")}}}}},
		},
		Output: out,
	}
}
