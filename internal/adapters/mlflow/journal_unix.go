//go:build unix

package mlflow

import (
	"os"
	"syscall"
)

// flock takes an exclusive lock on f without waiting; it fails with
// EWOULDBLOCK while another open file holds it. The lock ends when f is
// closed or the process ends, kill -9 included.
func flock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }
