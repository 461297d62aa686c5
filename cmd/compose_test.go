package cmd_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/matryer/is"
	"gopkg.in/yaml.v3"
)

// TestComposeFileParses reads docker-compose.yml as YAML (no Docker engine here): the
// replica service is there only under its profile, follows db, and has a volume.
func TestComposeFileParses(t *testing.T) {
	is := is.New(t)
	b, err := os.ReadFile("../docker-compose.yml")
	is.NoErr(err)
	var doc struct {
		Services map[string]struct {
			Profiles  []string       `yaml:"profiles"`
			Command   any            `yaml:"command"`
			Volumes   []string       `yaml:"volumes"`
			DependsOn map[string]any `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any            `yaml:"volumes"`
		Configs map[string]map[string]any `yaml:"configs"`
	}
	is.NoErr(yaml.Unmarshal(b, &doc))
	replica, ok := doc.Services["db-replica"]
	is.True(ok)
	is.Equal(replica.Profiles, []string{"replica"}) // optional: not in a plain `up`
	is.True(replica.DependsOn["db"] != nil)
	script, _ := replica.Command.([]any)
	is.Equal(len(script), 1)
	is.True(strings.Contains(script[0].(string), "pg_basebackup -h db -U postgres -D \"$$PGDATA\" -R"))
	is.True(slices.Contains(replica.Volumes, "pgreplica:/var/lib/postgresql/data"))
	_, ok = doc.Volumes["pgreplica"]
	is.True(ok)
	is.True(strings.Contains(doc.Configs["replication-hba"]["content"].(string), "host replication all all"))
	for _, name := range []string{"db", "redis", "migrate", "serve"} {
		is.Equal(len(doc.Services[name].Profiles), 0) // the default stack is unchanged
	}
}
