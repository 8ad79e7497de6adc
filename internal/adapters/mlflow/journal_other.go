//go:build !linux

package mlflow

import "os"

// datasync makes f's written data durable; without fdatasync, with fsync.
func datasync(f *os.File) error { return f.Sync() }
