package infra

import (
	"io"
	"log/slog"
)

// NewLogger returns the process's structured logger writing to w: text or
// JSON per LOG_FORMAT, at LOG_LEVEL (debug, info, warn or error; LoadConfig
// has validated both). A Config logged through it shows only its Redacted
// view (see Config.LogValue).
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
