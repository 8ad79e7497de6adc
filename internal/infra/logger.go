package infra

import (
	"io"
	"log/slog"
)

// NewLogger returns the process's structured logger: text or JSON per
// LOG_FORMAT, at LOG_LEVEL. Secrets never reach it: callers log the
// Redacted configuration and pool targets without passwords.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.LogLevel {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
