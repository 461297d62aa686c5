package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/config"
)

func TestDatabaseReadURL(t *testing.T) {
	is := is.New(t)
	cfg, err := config.Load(env(nil))
	is.NoErr(err)
	is.Equal(len(cfg.DatabaseReadURLs), 0) // no replicas: every read on the primary
	is.Equal(cfg.ReadMaxLag, 5*time.Second)

	cfg, err = config.Load(env(map[string]string{
		"DATABASE_READ_URL": " postgres://u:pw@replica-a:5432/sungrow , postgresql://replica-b/sungrow?sslmode=require,",
		"READ_MAX_LAG_S":    "2.5",
	}))
	is.NoErr(err)
	is.Equal(cfg.DatabaseReadURLs, []string{"postgres://u:pw@replica-a:5432/sungrow", "postgresql://replica-b/sungrow?sslmode=require"})
	is.Equal(cfg.ReadMaxLag, 2500*time.Millisecond)

	for _, c := range []struct{ urls, lag, want string }{
		{"postgres://u:secret-pw@replica:5432/db,mysql://u:secret-pw@x/db", "", "DATABASE_READ_URL: entry 2"},
		{"replica:5432", "", "DATABASE_READ_URL: entry 1"},
		{"postgres://u:secret-pw@replica:99999/db", "", "DATABASE_READ_URL: entry 1: port"},
		{"postgres://u:secret-pw@/db", "", "DATABASE_READ_URL: entry 1"},
		{"", "0", "READ_MAX_LAG_S"},
		{"", "soon", "READ_MAX_LAG_S"},
	} {
		_, err := config.Load(env(map[string]string{"DATABASE_READ_URL": c.urls, "READ_MAX_LAG_S": c.lag}))
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), c.want))
		is.True(!strings.Contains(err.Error(), "secret-pw")) // a password never reaches a log
	}
}
