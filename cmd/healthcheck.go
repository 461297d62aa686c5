package cmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sungrow/sungrow/config"
)

// healthcheckCommand asks a running server whether it is up. It exists for container
// HEALTHCHECKs: distroless and scratch images have no curl or shell, only this binary.
func healthcheckCommand(e *env) *cobra.Command {
	var url string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local server answers GET /health with 200, else 1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := http.DefaultClient
			if url == "" {
				cfg, err := config.Load(e.getenv)
				if err != nil {
					return err
				}
				if url, err = healthURL(cfg.ListenAddr, cfg.TLS()); err != nil {
					return err
				}
				if cfg.TLS() {
					// The certificate names the public host, not 127.0.0.1, and this
					// asks only whether the local server answers, sending nothing
					// secret: its certificate is not verified. An explicit --url is.
					client = &http.Client{Transport: &http.Transport{
						TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", url, err)
			}
			res, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %s", url, res.Status)
			}
			fmt.Fprintln(e.stdout, "ok")
			return nil
		},
	}
	c.Flags().StringVar(&url, "url", "", "health URL to check (default http://127.0.0.1:<port of $LISTEN_ADDR>/health, https:// when TLS_CERT_FILE is set)")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

// healthURL turns the address serve listens on into a URL this host can reach: a
// wildcard host (":8080", "0.0.0.0:8080", "[::]:8080") becomes 127.0.0.1.
func healthURL(listenAddr string, https bool) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("LISTEN_ADDR=%q: %w", listenAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	return scheme + host + ":" + port + "/health", nil
}
