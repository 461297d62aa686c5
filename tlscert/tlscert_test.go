package tlscert_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/internal/testenv"
	"github.com/sungrow/sungrow/tlscert"
)

// served is the certificate (DER) a new TLS connection to addr is given.
func served(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test compares the certificate itself
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// listen serves TLS handshakes with r's certificate until the test ends.
func listen(t *testing.T, r *tlscert.Reloader) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) { _ = c.(*tls.Conn).Handshake(); c.Close() }(c)
		}
	}()
	return ln.Addr().String()
}

// renew writes a new certificate and key over the files, dated a minute later: a real
// renewal comes months after the last, a test's within microseconds, finer than the
// file system's timestamps may tell apart.
func renew(t *testing.T, certFile, keyFile string) []byte {
	t.Helper()
	before, err := os.Stat(certFile)
	der := testenv.WriteSelfSigned(t, certFile, keyFile)
	if err == nil {
		later := before.ModTime().Add(time.Minute)
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, later, later); err != nil {
				t.Fatal(err)
			}
		}
	}
	return der
}

func TestReloadKeepsTheOldCertificateWhenTheNewOneFails(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := testenv.WriteSelfSigned(t, certFile, keyFile)
	r, err := tlscert.Load(certFile, keyFile, slog.New(slog.DiscardHandler))
	is.NoErr(err)
	addr := listen(t, r)
	is.True(bytes.Equal(served(t, addr), first))

	second := testenv.WriteSelfSigned(t, certFile, keyFile)
	is.NoErr(r.Reload())
	is.True(bytes.Equal(served(t, addr), second))

	// A renewal caught halfway (new certificate, old key) and a missing key both fail,
	// and the certificate in use stays.
	testenv.WriteSelfSigned(t, filepath.Join(dir, "c3"), filepath.Join(dir, "k3"))
	third, err := os.ReadFile(filepath.Join(dir, "c3"))
	is.NoErr(err)
	is.NoErr(os.WriteFile(certFile, third, 0o600))
	is.True(r.Reload() != nil)
	is.True(bytes.Equal(served(t, addr), second))
	is.NoErr(os.Remove(keyFile))
	err = r.Reload()
	is.True(err != nil)
	t.Log(err)
	is.True(bytes.Equal(served(t, addr), second))
}

func TestLoadRefusesUnusableFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_, err := tlscert.Load(certFile, keyFile, slog.New(slog.DiscardHandler))
	is.True(err != nil) // missing
	is.NoErr(os.WriteFile(certFile, []byte("not a certificate"), 0o600))
	is.NoErr(os.WriteFile(keyFile, []byte("not a key"), 0o600))
	_, err = tlscert.Load(certFile, keyFile, slog.New(slog.DiscardHandler))
	is.True(err != nil)
	t.Log(err)
}

// TestRunFollowsTheFiles: a renewal is picked up by the poll without a signal, and a
// broken one is logged once and changes nothing.
func TestRunFollowsTheFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testenv.WriteSelfSigned(t, certFile, keyFile)
	logs := &testenv.LogBuffer{}
	r, err := tlscert.Load(certFile, keyFile, slog.New(slog.NewJSONHandler(logs, nil)))
	is.NoErr(err)
	addr := listen(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	// The test is the clock: Run takes each tick from an unbuffered channel, so once a
	// send returns, the tick before it has been handled.
	tick := make(chan time.Time)
	poll := func(n int) {
		for range n + 1 {
			tick <- time.Time{}
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, nil, tick) }()
	t.Cleanup(func() { cancel(); <-done })

	poll(3)
	is.Equal(bytes.Count([]byte(logs.String()), []byte("tls certificate loaded")), 1) // unchanged files: not read again
	renewed := renew(t, certFile, keyFile)
	poll(1)
	is.True(bytes.Equal(served(t, addr), renewed))

	is.NoErr(os.WriteFile(keyFile, []byte("truncated"), 0o600))
	poll(10)
	is.True(bytes.Equal(served(t, addr), renewed))
	is.NoErr(os.Remove(certFile))
	poll(10)
	is.True(bytes.Equal(served(t, addr), renewed))
	fixed := renew(t, certFile, keyFile)
	poll(1)
	is.True(bytes.Equal(served(t, addr), fixed))

	// Each broken state reported once, not every poll.
	is.Equal(bytes.Count([]byte(logs.String()), []byte("do not load")), 2)
}

func TestRunReloadsOnSignal(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testenv.WriteSelfSigned(t, certFile, keyFile)
	r, err := tlscert.Load(certFile, keyFile, slog.New(slog.DiscardHandler))
	is.NoErr(err)
	addr := listen(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, hup, nil) }() // no poll
	t.Cleanup(func() { cancel(); <-done })

	renewed := testenv.WriteSelfSigned(t, certFile, keyFile)
	hup <- os.Interrupt // unbuffered: Run has taken it
	testenv.Await(t, "the signal reloads", 10*time.Second, func() bool {
		return bytes.Equal(served(t, addr), renewed)
	})
}
