package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/config"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadDefaults(t *testing.T) {
	is := is.New(t)
	cfg, err := config.Load(env(nil))
	is.NoErr(err)
	is.Equal(cfg.ListenAddr, ":8080")
	is.Equal(cfg.MaxRequestBytes, int64(1048576))
	is.Equal(cfg.MaxSamplesPerRequest, 1000)
	is.Equal(cfg.CacheTTL, 5*time.Second)
	is.Equal(cfg.TZ, time.UTC)
	is.Equal(cfg.SampleInterval, 5*time.Second)
	is.Equal(len(cfg.CORSOrigins), 0)
	is.Equal(cfg.StreamKeepalive, 15*time.Second)
	is.Equal(cfg.StreamMaxClients, 10000)
	is.Equal(cfg.QuarantineMaxPerDevice, 10000)
	is.True(cfg.RequireDatabase() != nil) // DATABASE_URL has no default
	is.Equal(cfg.MQTTURL, nil)            // no broker: no Home Assistant bridge
	is.Equal(cfg.MQTTDiscoveryPrefix, "homeassistant")
	is.Equal(cfg.MQTTTopicPrefix, "sungrow")
	is.Equal(cfg.MQTTMinInterval, 5*time.Second)
	is.Equal(cfg.AggregateAudit, time.Hour)
}

func TestLoadReportsEveryBadVariableByName(t *testing.T) {
	is := is.New(t)
	_, err := config.Load(env(map[string]string{
		"MAX_REQUEST_BYTES":         "1MB",
		"MAX_SAMPLES_PER_REQUEST":   "-5",
		"CACHE_TTL_S":               "soon",
		"SUNGROW_TZ":                "Mars/Olympus",
		"CORS_ORIGINS":              "dash.example.com",
		"QUARANTINE_MAX_PER_DEVICE": "0",
		"STREAM_KEEPALIVE_S":        "0",
		"STREAM_MAX_CLIENTS":        "0",
		"MQTT_URL":                  "http://user:hunter2@broker:1883",
		"MQTT_DISCOVERY_PREFIX":     "home/#",
		"MQTT_TOPIC_PREFIX":         "sungrow//x",
		"MQTT_MIN_INTERVAL_S":       "-1",
		"SAMPLE_INTERVAL_S":         "3601",
		"AGGREGATE_AUDIT_S":         "-1",
	}))
	is.True(err != nil)
	for _, name := range []string{"MAX_REQUEST_BYTES", "MAX_SAMPLES_PER_REQUEST", "CACHE_TTL_S", "SUNGROW_TZ", "CORS_ORIGINS",
		"QUARANTINE_MAX_PER_DEVICE", "SAMPLE_INTERVAL_S", "STREAM_KEEPALIVE_S", "STREAM_MAX_CLIENTS",
		"MQTT_URL", "MQTT_DISCOVERY_PREFIX", "MQTT_TOPIC_PREFIX", "MQTT_MIN_INTERVAL_S", "AGGREGATE_AUDIT_S"} {
		is.True(strings.Contains(err.Error(), name)) // each problem names its variable
	}
	is.True(!strings.Contains(err.Error(), "hunter2")) // never the broker's password
}

func TestLoadReadsValues(t *testing.T) {
	is := is.New(t)
	cfg, err := config.Load(env(map[string]string{
		"CACHE_TTL_S":               "0",
		"SUNGROW_TZ":                "Europe/Brussels",
		"CORS_ORIGINS":              " https://a.example.com/ , http://localhost:3000",
		"QUARANTINE_MAX_PER_DEVICE": "50",
		"STREAM_KEEPALIVE_S":        "0.5",
		"STREAM_MAX_CLIENTS":        "3",
		"MQTT_URL":                  "mqtts://ha:s3cret@broker.example.com:8883",
		"MQTT_MIN_INTERVAL_S":       "0.5",
		"SAMPLE_INTERVAL_S":         "60",
		"AGGREGATE_AUDIT_S":         "0",
	}))
	is.NoErr(err)
	is.Equal(cfg.QuarantineMaxPerDevice, 50)
	is.Equal(cfg.MQTTURL.Hostname(), "broker.example.com")
	is.Equal(cfg.MQTTMinInterval, 500*time.Millisecond)
	is.Equal(cfg.SampleInterval, time.Minute)
	is.Equal(cfg.StreamKeepalive, 500*time.Millisecond)
	is.Equal(cfg.StreamMaxClients, 3)
	is.Equal(cfg.CacheTTL, time.Duration(0))       // 0 turns caching off
	is.Equal(cfg.AggregateAudit, time.Duration(0)) // 0 turns the audit off
	is.Equal(cfg.TZ.String(), "Europe/Brussels")
	is.Equal(cfg.CORSOrigins, []string{"https://a.example.com", "http://localhost:3000"})
}

func TestMQTTPrefixesMustDiffer(t *testing.T) {
	is := is.New(t)
	_, err := config.Load(env(map[string]string{"MQTT_TOPIC_PREFIX": "homeassistant"}))
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "MQTT_TOPIC_PREFIX and MQTT_DISCOVERY_PREFIX"))
}

func TestParseDeviceTokens(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"tokA:dev-1,tokB:dev-2", map[string]string{"tokA": "dev-1", "tokB": "dev-2"}, ""},
		{" tokA : dev-1 , ", map[string]string{"tokA": "dev-1"}, ""},
		{"", map[string]string{}, ""},
		{" , ", map[string]string{}, ""},
		{"t0psecret", nil, "entry 1 is not token:device_id"},
		{"tokA:dev-1,tokA:dev-2", nil, "entry 2 repeats"},
		{"tokA:", nil, "entry 1"},
		{"tokA:dev-1,tokB:dev{2}", nil, "entry 2: a device_id may not contain { or }"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			is := is.New(t)
			got, err := config.ParseDeviceTokens(tt.in)
			if tt.wantErr != "" {
				is.True(err != nil)
				is.True(strings.Contains(err.Error(), tt.wantErr))
				is.True(!strings.Contains(err.Error(), "t0psecret")) // never the token itself
				return
			}
			is.NoErr(err)
			is.Equal(got, tt.want)
		})
	}
}

func TestTLSFilesComeInPairs(t *testing.T) {
	for _, tc := range []struct {
		cert, key, missing string
	}{
		{"/etc/ssl/cert.pem", "", "TLS_KEY_FILE"},
		{"", "/etc/ssl/key.pem", "TLS_CERT_FILE"},
	} {
		is := is.New(t)
		_, err := config.Load(env(map[string]string{"TLS_CERT_FILE": tc.cert, "TLS_KEY_FILE": tc.key}))
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), tc.missing+" is not")) // names the one missing
	}
	is := is.New(t)
	cfg, err := config.Load(env(nil))
	is.NoErr(err)
	is.True(!cfg.TLS())
	cfg, err = config.Load(env(map[string]string{"TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem"}))
	is.NoErr(err)
	is.True(cfg.TLS())
	is.Equal(cfg.TLSCertFile, "/c.pem")
	is.Equal(cfg.TLSKeyFile, "/k.pem")
}
