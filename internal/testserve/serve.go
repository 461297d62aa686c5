// Package testserve runs `sungrow serve` inside a test's process. It is apart from
// testenv because it imports cmd, and cmd imports the packages (cache, devices, series…)
// whose own in-package tests use testenv: in testenv it would be an import cycle.
package testserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/sungrow/sungrow/cmd"
	"github.com/sungrow/sungrow/internal/testenv"
)

// Serve is `sungrow serve` running in the test's own process.
type Serve struct {
	Base string // http://host:port, or https:// when env sets TLS_CERT_FILE
	Logs *testenv.LogBuffer
	// Client reaches Base: for HTTPS it trusts the certificate serve started with.
	Client *http.Client
}

// StartServe runs `sungrow serve` in-process with env (LISTEN_ADDR is chosen here) until
// the test ends, and waits until it answers /health.
func StartServe(t testing.TB, env map[string]string) *Serve {
	t.Helper()
	addr := testenv.FreeAddr(t)
	full := map[string]string{"LISTEN_ADDR": addr}
	for k, v := range env {
		full[k] = v
	}
	s := &Serve{Base: "http://" + addr, Logs: &testenv.LogBuffer{}, Client: http.DefaultClient}
	if certFile := full["TLS_CERT_FILE"]; certFile != "" {
		pem, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", certFile)
		}
		s.Base = "https://" + addr
		s.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmd.Run(ctx, []string{"serve"}, func(k string) string { return full[k] }, io.Discard, s.Logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s of its context ending")
		}
	})
	testenv.WaitHealthyWith(t, s.Client, s.Base, done)
	return s
}
