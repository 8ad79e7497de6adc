package logtest_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/logtest"
)

// TestBufferKeepsEveryWriteOfConcurrentWriters checks, under -race, that
// writes from many goroutines, read while they run, are all kept whole.
func TestBufferKeepsEveryWriteOfConcurrentWriters(t *testing.T) {
	var b logtest.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if n, err := b.Write([]byte("line\n")); n != 5 || err != nil {
					t.Errorf("Write = %d, %v; want 5, nil", n, err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Fatalf("%d lines kept; want 800", got)
	}
}
