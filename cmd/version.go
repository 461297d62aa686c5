package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "sungrow %s (%s)\n", versionText(), runtime.Version())
			return err
		},
	}
}

// versionText is the version and commit of this binary, as `version`, --version and
// Home Assistant's sw_version show them: "dev (commit 5603c63a1b2c)".
func versionText() string {
	info, _ := debug.ReadBuildInfo()
	return fmt.Sprintf("%s (commit %s)", Version, commitOf(Commit, info))
}

// commitOf is the commit -ldflags set, else the one the go command stamped into the
// binary from the checkout it built (a plain `go build` does, unless -buildvcs=false),
// shortened to 12 hex digits, with "-modified" when the checkout had uncommitted
// changes; else "unknown".
func commitOf(ldflags string, info *debug.BuildInfo) string {
	if ldflags != "unknown" || info == nil {
		return ldflags
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return ldflags
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "-modified"
	}
	return revision
}
