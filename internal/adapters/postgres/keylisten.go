package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The listener's timing: a connection silent for listenPingInterval is
// pinged and given listenPingTimeout to answer (so a connection that died
// without a word is noticed within their sum, well inside any TTL), and
// reconnections wait from listenMinBackoff, doubling up to
// listenMaxBackoff.
const (
	listenPingInterval = 5 * time.Second
	listenPingTimeout  = 2 * time.Second
	listenMinBackoff   = 100 * time.Millisecond
	listenMaxBackoff   = 5 * time.Second
)

// Listen keeps the cache in step with the database until ctx ends. It
// opens a connection with connect — its own, outside any pool, held as long
// as Listen runs — LISTENs on KeyChannel there and applies each
// notification as it arrives. A connection that fails, or does not answer
// a ping after listenPingInterval of silence, is replaced, with waits from
// 100 ms doubling to 5 s between attempts. The cache is emptied on each
// connection (notifications may have been missed meanwhile) and serves
// nothing from memory while there is none.
func (c *KeyCache) Listen(ctx context.Context, connect func(context.Context) (*pgx.Conn, error)) {
	backoff := listenMinBackoff
	interrupted := false
	for {
		connected, err := c.listenOnce(ctx, connect)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff, interrupted = listenMinBackoff, false
		}
		if !interrupted {
			c.logger.Warn("key cache: no notifications of key changes; every key is read from the database until they resume",
				"err", err, "retry_in", backoff)
			interrupted = true
		} else {
			c.logger.Debug("key cache: reconnection failed", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenOnce runs one connection of Listen until it fails or ctx ends, and
// reports whether it got as far as listening.
func (c *KeyCache) listenOnce(ctx context.Context, connect func(context.Context) (*pgx.Conn, error)) (bool, error) {
	conn, err := connect(ctx)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listenPingTimeout)
		defer cancel()
		_ = conn.Close(closeCtx) // a broken connection has nothing left to say
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+KeyChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	c.connections.Add(1)
	c.setListening(true)
	defer c.setListening(false)
	c.logger.Info("key cache: listening for key changes; the cache starts empty", "channel", KeyChannel)
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenPingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		silent := waitCtx.Err() != nil
		cancel()
		switch {
		case err == nil:
			c.notifications.Add(1)
			c.invalidate(n.Payload)
		case ctx.Err() != nil:
			return true, ctx.Err()
		case silent:
			pingCtx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping after %s without a notification: %w", listenPingInterval, err)
			}
		default:
			return true, fmt.Errorf("wait for a notification: %w", err)
		}
	}
}
