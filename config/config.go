// Package config reads sungrow's settings from the environment, so every command
// validates them the same way and an invalid value stops the program with a message
// that names the variable. Secrets (device tokens) never appear in its errors.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything sungrow reads from its environment. Commands use the parts they
// need; Load checks only that values present are well formed.
type Config struct {
	DatabaseURL          string
	RedisURL             string // empty: an in-process cache is used
	ListenAddr           string
	MaxRequestBytes      int64
	MaxSamplesPerRequest int
	CacheTTL             time.Duration // 0 turns the realtime cache off
	ShutdownTimeout      time.Duration
	// ReadHeaderTimeout (READ_HEADER_TIMEOUT_S) and ReadTimeout (READ_TIMEOUT_S) drop
	// clients that send their headers or body too slowly to hold a connection hostage.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// TZ (SUNGROW_TZ) is where days, weeks, months and years of GET /v1/series begin.
	TZ *time.Location
	// LateRefreshDelay (LATE_REFRESH_DELAY_S) is how long serve gathers late samples
	// before it refreshes the aggregates they fall in, so a burst costs one refresh.
	LateRefreshDelay time.Duration
	// AggregateAudit (AGGREGATE_AUDIT_S, default 3600; 0 turns it off) is how often
	// serve checks the recent series buckets against the levels below and mends them.
	AggregateAudit time.Duration
	// SampleInterval (SAMPLE_INTERVAL_S, 1–3600 s, default 5) is how long one reading
	// stands for: the edge daemons' polling period, which turns powers into energy.
	SampleInterval time.Duration
	// CORSOrigins (CORS_ORIGINS, comma-separated; "*" for any) may read the GET
	// endpoints from a browser. Empty: no CORS headers at all.
	CORSOrigins []string
	// StreamKeepalive (STREAM_KEEPALIVE_S) is how often an idle GET /v1/stream sends a
	// keepalive comment, so proxies keep the connection.
	StreamKeepalive time.Duration
	// StreamMaxClients (STREAM_MAX_CLIENTS) bounds the open streams of one instance.
	StreamMaxClients int
	// QuarantineMaxPerDevice (QUARANTINE_MAX_PER_DEVICE) bounds the implausible samples
	// kept per device; beyond it the oldest arrivals are dropped.
	QuarantineMaxPerDevice int
	// MQTTURL (MQTT_URL: mqtt://user:pass@host:1883, or mqtts:// with the system's
	// roots) is the broker the Home Assistant bridge publishes to; nil: no bridge.
	MQTTURL *url.URL
	// MQTTDiscoveryPrefix (MQTT_DISCOVERY_PREFIX) is Home Assistant's discovery prefix.
	MQTTDiscoveryPrefix string
	// MQTTTopicPrefix (MQTT_TOPIC_PREFIX) heads sungrow's own state and status topics.
	MQTTTopicPrefix string
	// MQTTMinInterval (MQTT_MIN_INTERVAL_S) is the least time between two state
	// messages of one device.
	MQTTMinInterval time.Duration
	// TLSCertFile (TLS_CERT_FILE) and TLSKeyFile (TLS_KEY_FILE), both or neither, make
	// serve answer HTTPS on LISTEN_ADDR with that certificate (PEM, the chain after the
	// leaf, as certbot's fullchain.pem) and key.
	TLSCertFile string
	TLSKeyFile  string
}

// Load reads the configuration, applying defaults for unset variables. All problems are
// reported together.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	cfg := Config{
		DatabaseURL: strings.TrimSpace(getenv("DATABASE_URL")),
		RedisURL:    strings.TrimSpace(getenv("REDIS_URL")),
		ListenAddr:  stringOr(getenv("LISTEN_ADDR"), ":8080"),
	}
	cfg.MaxRequestBytes = positiveInt(getenv, "MAX_REQUEST_BYTES", 1<<20, &errs)
	cfg.MaxSamplesPerRequest = int(positiveInt(getenv, "MAX_SAMPLES_PER_REQUEST", 1000, &errs))
	cfg.CacheTTL = seconds(getenv, "CACHE_TTL_S", 5, &errs)
	cfg.ShutdownTimeout = seconds(getenv, "SHUTDOWN_TIMEOUT_S", 15, &errs)
	cfg.ReadHeaderTimeout = seconds(getenv, "READ_HEADER_TIMEOUT_S", 5, &errs)
	cfg.ReadTimeout = seconds(getenv, "READ_TIMEOUT_S", 30, &errs)
	cfg.TZ = timeZone(getenv, "SUNGROW_TZ", &errs)
	cfg.LateRefreshDelay = seconds(getenv, "LATE_REFRESH_DELAY_S", 10, &errs)
	cfg.AggregateAudit = seconds(getenv, "AGGREGATE_AUDIT_S", 3600, &errs)
	cfg.SampleInterval = time.Duration(intIn(getenv, "SAMPLE_INTERVAL_S", 5, 1, 3600, &errs)) * time.Second
	cfg.CORSOrigins = origins(getenv, "CORS_ORIGINS", &errs)
	cfg.StreamKeepalive = seconds(getenv, "STREAM_KEEPALIVE_S", 15, &errs)
	if cfg.StreamKeepalive <= 0 && strings.TrimSpace(getenv("STREAM_KEEPALIVE_S")) != "" {
		errs = append(errs, fmt.Errorf("STREAM_KEEPALIVE_S=%q: want more than 0 seconds", getenv("STREAM_KEEPALIVE_S")))
		cfg.StreamKeepalive = 15 * time.Second
	}
	cfg.StreamMaxClients = int(positiveInt(getenv, "STREAM_MAX_CLIENTS", 10000, &errs))
	cfg.QuarantineMaxPerDevice = int(positiveInt(getenv, "QUARANTINE_MAX_PER_DEVICE", 10000, &errs))
	cfg.MQTTURL = mqttURL(getenv, "MQTT_URL", &errs)
	cfg.MQTTDiscoveryPrefix = topicPrefix(getenv, "MQTT_DISCOVERY_PREFIX", "homeassistant", &errs)
	cfg.MQTTTopicPrefix = topicPrefix(getenv, "MQTT_TOPIC_PREFIX", "sungrow", &errs)
	cfg.MQTTMinInterval = seconds(getenv, "MQTT_MIN_INTERVAL_S", 5, &errs)
	cfg.TLSCertFile, cfg.TLSKeyFile = strings.TrimSpace(getenv("TLS_CERT_FILE")), strings.TrimSpace(getenv("TLS_KEY_FILE"))
	switch {
	case cfg.TLSCertFile != "" && cfg.TLSKeyFile == "":
		errs = append(errs, errors.New("TLS_CERT_FILE is set but TLS_KEY_FILE is not: set both for HTTPS, or neither"))
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile != "":
		errs = append(errs, errors.New("TLS_KEY_FILE is set but TLS_CERT_FILE is not: set both for HTTPS, or neither"))
	}
	if cfg.MQTTTopicPrefix == cfg.MQTTDiscoveryPrefix {
		// <prefix>/status would be Home Assistant's own status topic.
		errs = append(errs, fmt.Errorf("MQTT_TOPIC_PREFIX and MQTT_DISCOVERY_PREFIX are both %q: they must differ", cfg.MQTTTopicPrefix))
	}
	return cfg, errors.Join(errs...)
}

// TLS says whether serve answers HTTPS.
func (c Config) TLS() bool { return c.TLSCertFile != "" }

// RequireDatabase reports a missing DATABASE_URL in the words an operator needs.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set (e.g. postgres://postgres@localhost:5432/sungrow)")
	}
	return nil
}

// ParseDeviceTokens reads DEVICE_TOKENS ("tokenA:device-1,tokenB:device-2") into a map
// from token to device; empty is fine (the devices table may hold the tokens). An entry
// is named by its position, never by its token.
func ParseDeviceTokens(s string) (map[string]string, error) {
	tokens := make(map[string]string)
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		token, device, ok := strings.Cut(entry, ":")
		token, device = strings.TrimSpace(token), strings.TrimSpace(device)
		if !ok || token == "" || device == "" {
			return nil, fmt.Errorf("DEVICE_TOKENS: entry %d is not token:device_id", i+1)
		}
		if err := CheckDeviceID(device); err != nil {
			return nil, fmt.Errorf("DEVICE_TOKENS: entry %d: %w", i+1, err)
		}
		if _, dup := tokens[token]; dup {
			return nil, fmt.Errorf("DEVICE_TOKENS: entry %d repeats an earlier token", i+1)
		}
		tokens[token] = device
	}
	return tokens, nil
}

// CheckDeviceID says what is wrong with a device id, nil if nothing: the one rule for
// DEVICE_TOKENS and `sungrow device add` alike (ingest then only admits samples whose
// device_id is exactly their token's device).
func CheckDeviceID(id string) error {
	switch {
	case id == "":
		return errors.New("a device_id may not be empty")
	case strings.TrimSpace(id) != id:
		return errors.New("a device_id may not begin or end with white space")
	// Braces would make Redis Cluster hash a device's cache keys to different slots
	// (hash tags); no inverter id needs them.
	case strings.ContainsAny(id, "{}"):
		return errors.New("a device_id may not contain { or }")
	}
	return nil
}

func stringOr(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

func positiveInt(getenv func(string) string, name string, def int64, errs *[]error) int64 {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a whole number of at least 1", name, v))
		return def
	}
	return n
}

func intIn(getenv func(string) string, name string, def, lo, hi int64, errs *[]error) int64 {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

func seconds(getenv func(string) string, name string, def float64, errs *[]error) time.Duration {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return time.Duration(def * float64(time.Second))
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n > 365*24*3600 {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a number of seconds, 0 or more", name, v))
		return time.Duration(def * float64(time.Second))
	}
	return time.Duration(n * float64(time.Second))
}

// timeZone reads an IANA zone name; "Local" is refused because its meaning depends on
// the machine, and the aggregates must be built in a zone that can be named again.
func timeZone(getenv func(string) string, name string, errs *[]error) *time.Location {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(v)
	if err != nil || v == "Local" {
		*errs = append(*errs, fmt.Errorf("%s=%q: want an IANA time zone name such as UTC or Europe/Brussels", name, v))
		return time.UTC
	}
	return loc
}

// origins reads a comma-separated list of browser origins (scheme://host[:port]).
func origins(getenv func(string) string, name string, errs *[]error) []string {
	var list []string
	for _, o := range strings.Split(getenv(name), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			*errs = append(*errs, fmt.Errorf("%s: %q is not an origin like https://dash.example.com", name, o))
			continue
		}
		list = append(list, o)
	}
	return list
}

// mqttURL reads a broker URL. Its error never repeats the URL, which may hold a
// password.
func mqttURL(getenv func(string) string, name string, errs *[]error) *url.URL {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		*errs = append(*errs, fmt.Errorf("%s: want mqtt://[user:password@]host[:port] or mqtts://... (password not shown)", name))
		return nil
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			*errs = append(*errs, fmt.Errorf("%s: port %q is not a TCP port", name, p))
			return nil
		}
	}
	return u
}

// topicPrefix reads an MQTT topic prefix: one or more levels, no wildcards, no empty
// level, since it heads topics others subscribe to.
func topicPrefix(getenv func(string) string, name, def string, errs *[]error) string {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	for _, level := range strings.Split(v, "/") {
		if level == "" || strings.ContainsAny(level, "+#") || strings.ContainsRune(level, 0) {
			*errs = append(*errs, fmt.Errorf("%s=%q: want topic levels like %q, without + or # or empty levels", name, v, def))
			return def
		}
	}
	return v
}
