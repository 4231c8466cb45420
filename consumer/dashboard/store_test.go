package dashboard

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/streamqc/streamqc/consumer/history"
)

// TestStoreHistoryBadCursor: the store's bad cursor is the page's 400
// (ErrBadCursor), found by its sentinel, not by its message's words.
func TestStoreHistoryBadCursor(t *testing.T) {
	ctx := context.Background()
	st, err := history.Open(ctx, history.Options{Path: filepath.Join(t.TempDir(), "h.db"), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := StoreHistory(st, "f")
	if _, err := h.Events(ctx, Query{Before: "zz", Limit: 10}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
	if _, err := h.Events(ctx, Query{Limit: 10}); err != nil {
		t.Errorf("no cursor: %v", err)
	}
}
