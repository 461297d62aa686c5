package cmd

import (
	"runtime/debug"
	"testing"

	"github.com/matryer/is"
)

func TestCommitOf(t *testing.T) {
	stamped := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	for _, tc := range []struct {
		name, ldflags string
		info          *debug.BuildInfo
		want          string
	}{
		{"-ldflags win", "abc1234", stamped("vcs.revision", "5603c63a1b2c3d4e5f60718293a4b5c6d7e8f901"), "abc1234"},
		{"plain go build", "unknown", stamped("vcs.revision", "5603c63a1b2c3d4e5f60718293a4b5c6d7e8f901", "vcs.modified", "false"), "5603c63a1b2c"},
		{"uncommitted changes", "unknown", stamped("vcs.revision", "5603c63a1b2c3d4e5f60718293a4b5c6d7e8f901", "vcs.modified", "true"), "5603c63a1b2c-modified"},
		{"-buildvcs=false", "unknown", stamped("GOOS", "linux"), "unknown"},
		{"no build information", "unknown", nil, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is.New(t).Equal(commitOf(tc.ldflags, tc.info), tc.want)
		})
	}
}
