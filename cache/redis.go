package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key is the Redis key of a device's cached realtime answer (the sample as JSON).
func Key(deviceID string) string { return "realtime:" + deviceID }

// genKey holds the device's invalidation generation. Its hash tag is the whole value
// key, so on Redis Cluster both live in one slot and one script can touch both.
func genKey(deviceID string) string { return "{" + Key(deviceID) + "}:gen" }

// genTTL keeps a generation far longer than any load may run (loadTimeout), so a load
// never sees its generation vanish and come back, yet a forgotten device leaves
// nothing behind for ever.
const genTTL = time.Hour

// Short defaults: a slow Redis must cost a request milliseconds, not seconds, since the
// database can always answer instead. A URL's own dial_timeout etc. win.
const (
	defaultDialTimeout = 250 * time.Millisecond
	defaultIOTimeout   = 100 * time.Millisecond
)

// storeScript sets the value only while the generation is the one the load began
// under, so an answer read before an ingest's commit cannot land after its
// invalidation. KEYS: value, generation; ARGV: generation, value, ttl in ms.
var storeScript = redis.NewScript(`
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return {0, g} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, g}
`)

// invalidateScript drops the value and starts a new generation, atomically.
// KEYS: value, generation; ARGV: generation ttl in ms.
var invalidateScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`)

// NewRedis returns a cache in Redis at a redis:// or rediss:// URL. Beyond go-redis's
// own URL parameters it reads three, so Sentinel and Cluster deployments need only
// configuration: addr (repeatable: more seed nodes, which selects Cluster),
// cluster=true (Cluster with one seed) and master_name (the host(s) are Sentinels).
// It does not connect: an unreachable Redis only means misses until it is back.
func NewRedis(rawURL string, o Options) (*Realtime, error) {
	opts, err := universalOptions(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return newRealtime("redis", &redisBackend{client: redis.NewUniversalClient(opts)}, o), nil
}

func universalOptions(rawURL string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL") // url's error would repeat the password
	}
	q := u.Query()
	extra, master, cluster := q["addr"], q.Get("master_name"), q.Get("cluster")
	q.Del("addr")
	q.Del("master_name")
	q.Del("cluster")
	u.RawQuery = q.Encode()
	simple, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, err
	}
	isCluster := false
	if cluster != "" {
		if isCluster, err = strconv.ParseBool(cluster); err != nil {
			return nil, fmt.Errorf("cluster=%q: want true or false", cluster)
		}
	}
	opts := &redis.UniversalOptions{
		Addrs:                 append([]string{simple.Addr}, extra...),
		IsClusterMode:         isCluster,
		MasterName:            master,
		DB:                    simple.DB,
		Protocol:              simple.Protocol,
		Username:              simple.Username,
		Password:              simple.Password,
		SentinelUsername:      simple.Username,
		SentinelPassword:      simple.Password,
		ClientName:            simple.ClientName,
		TLSConfig:             simple.TLSConfig,
		MaxRetries:            simple.MaxRetries,
		DialTimeout:           simple.DialTimeout,
		ReadTimeout:           simple.ReadTimeout,
		WriteTimeout:          simple.WriteTimeout,
		PoolSize:              simple.PoolSize,
		PoolTimeout:           simple.PoolTimeout,
		MinIdleConns:          simple.MinIdleConns,
		MaxIdleConns:          simple.MaxIdleConns,
		MaxActiveConns:        simple.MaxActiveConns,
		ConnMaxIdleTime:       simple.ConnMaxIdleTime,
		ConnMaxLifetime:       simple.ConnMaxLifetime,
		ContextTimeoutEnabled: true,
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = defaultIOTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = defaultIOTimeout
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = 2 * defaultIOTimeout // a burst may queue for a connection
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1 // no retries: the database is the fallback, not a second try
	}
	// go-redis dials up to 5 times, 100 ms apart, before it gives up: with Redis down
	// that held requests for half a second. One attempt, then the database answers.
	opts.DialerRetries = 1
	return opts, nil
}

type redisBackend struct {
	client redis.UniversalClient
}

func (r *redisBackend) get(ctx context.Context, device string) ([]byte, error) {
	val, err := r.client.Get(ctx, Key(device)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis get: %w", err)
	}
	return val, nil
}

func (r *redisBackend) peek(ctx context.Context, device string) ([]byte, string, error) {
	vals, err := r.client.MGet(ctx, Key(device), genKey(device)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redis mget: %w", err)
	}
	val, _ := vals[0].(string)
	gen, _ := vals[1].(string)
	if vals[0] == nil {
		return nil, gen, nil
	}
	return []byte(val), gen, nil
}

func (r *redisBackend) storeIf(ctx context.Context, device, gen string, val []byte, ttl time.Duration) (bool, string, error) {
	res, err := storeScript.Run(ctx, r.client, []string{Key(device), genKey(device)},
		gen, val, max(ttl.Milliseconds(), 1)).Slice()
	if err != nil {
		return false, "", fmt.Errorf("redis store: %w", err)
	}
	if len(res) != 2 {
		return false, "", fmt.Errorf("redis store: unexpected reply %v", res)
	}
	stored, _ := res[0].(int64)
	current, _ := res[1].(string)
	return stored == 1, current, nil
}

func (r *redisBackend) invalidate(ctx context.Context, device string) error {
	err := invalidateScript.Run(ctx, r.client, []string{Key(device), genKey(device)}, genTTL.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redis invalidate: %w", err)
	}
	return nil
}

func (r *redisBackend) ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

func (r *redisBackend) close() error { return r.client.Close() }

// RouteRedisLogs sends go-redis's own log lines (plain text on stderr by default, one
// per failed dial) to logger at debug level: the cache already warns about an outage at
// a bounded rate, in JSON. go-redis keeps its logger per process, hence a function
// that serve calls once.
func RouteRedisLogs(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
