// Package logtest gives tests an output that the goroutines of the code
// under test (a logger's, a child process's) may write to while the test
// reads it.
package logtest

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it. Its methods may be called from
// any number of goroutines at once.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
