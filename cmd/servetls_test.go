package cmd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
)

// TestServeHTTPS: with TLS_CERT_FILE and TLS_KEY_FILE serve answers HTTPS with that
// certificate (startServe waits for /health through a client that trusts only it),
// healthcheck speaks HTTPS, and after the files are replaced and SIGHUP, new
// connections get the new certificate; a broken replacement keeps the one in use.
func TestServeHTTPS(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	first := testenv.WriteSelfSigned(t, certFile, keyFile)
	d := testenv.New(t, testenv.Postgres)
	env := map[string]string{"DATABASE_URL": d.URL, "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}
	s := startServe(t, env)
	is.True(strings.HasPrefix(s.Base, "https://"))
	addr := strings.TrimPrefix(s.Base, "https://")

	served := func() []byte {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // compared below, byte for byte
		is.NoErr(err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	is.True(bytes.Equal(served(), first))

	check := map[string]string{"LISTEN_ADDR": addr, "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}
	out, _, err := run(context.Background(), check, "healthcheck")
	is.NoErr(err)
	is.Equal(out, "ok\n")
	_, _, err = run(context.Background(), map[string]string{"LISTEN_ADDR": addr}, "healthcheck")
	is.True(err != nil) // plain HTTP to an HTTPS server fails: the check does follow TLS_CERT_FILE

	renewed := testenv.WriteSelfSigned(t, certFile, keyFile)
	is.NoErr(syscall.Kill(os.Getpid(), syscall.SIGHUP)) // serve has asked for SIGHUP since it started
	testenv.Await(t, "new connections get the renewed certificate", 10*time.Second, func() bool {
		return bytes.Equal(served(), renewed)
	})

	is.NoErr(os.WriteFile(keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\ntruncated"), 0o600))
	is.NoErr(syscall.Kill(os.Getpid(), syscall.SIGHUP))
	testenv.Await(t, "the failed reload is logged", 10*time.Second, func() bool {
		return strings.Contains(s.Logs.String(), "reload failed, serving the one loaded before")
	})
	is.True(bytes.Equal(served(), renewed))
	_, _, err = run(context.Background(), check, "healthcheck")
	is.NoErr(err)
}

func TestServeRefusesUnusableTLSFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	d := testenv.New(t, testenv.Postgres)
	_, _, err := run(context.Background(), map[string]string{"DATABASE_URL": d.URL, "LISTEN_ADDR": testenv.FreeAddr(t),
		"TLS_CERT_FILE": filepath.Join(dir, "missing.pem"), "TLS_KEY_FILE": filepath.Join(dir, "missing-key.pem")}, "serve")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "TLS_CERT_FILE"))
	_, _, err = run(context.Background(), map[string]string{"TLS_CERT_FILE": "/c.pem"}, "serve")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "TLS_CERT_FILE is set but TLS_KEY_FILE is not"))
}
