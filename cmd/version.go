package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "sungrow %s (commit %s, %s)\n", Version, Commit, runtime.Version())
			return err
		},
	}
}
