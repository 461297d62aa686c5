// Package cache keeps the newest sample of each device close at hand for
// GET /v1/realtime, in Redis or, without Redis, in process.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key is the Redis key of a device's cached newest sample.
func Key(deviceID string) string { return "realtime:" + deviceID }

// Redis is the cache in Redis, shared by every sungrow instance.
type Redis struct {
	client redis.UniversalClient
	logger *slog.Logger
}

// NewRedis connects to a redis:// or rediss:// URL.
func NewRedis(url string, logger *slog.Logger) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	// Short timeouts: a slow Redis must cost a request milliseconds, not seconds,
	// since the database can always answer instead.
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 100 * time.Millisecond
	opts.WriteTimeout = 100 * time.Millisecond
	opts.MaxRetries = 0
	return &Redis{client: redis.NewClient(opts), logger: logger}, nil
}

// Invalidate forgets the cached sample of a device, best effort.
func (c *Redis) Invalidate(ctx context.Context, deviceID string) {
	if err := c.client.Del(ctx, Key(deviceID)).Err(); err != nil {
		c.logger.WarnContext(ctx, "invalidate realtime cache", "device_id", deviceID, "err", err)
	}
}

// Close releases the connections.
func (c *Redis) Close() error { return c.client.Close() }
