package mlflow

import (
	"os"
	"syscall"
)

// datasync makes f's written data durable without its metadata (times),
// which a preallocated segment's writes do not change otherwise.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
