// Package tlscert keeps the certificate serve answers HTTPS with current from its files
// (TLS_CERT_FILE, TLS_KEY_FILE), so a renewal (certbot replacing the files) takes
// effect for new connections without a restart, and a broken renewal never takes the
// server down.
package tlscert

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the certificate in use; GetCertificate hands it to every handshake.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu sync.Mutex // one reload at a time; guards the stamps
	// loaded is the files' stamp when the certificate in use was read. While failing,
	// failed is that of the last reload that failed (zero when a file was missing), so
	// files left broken are reported once, not every poll, and tried again as soon as
	// either changes.
	loaded, failed stamp
	failing        bool
}

// stamp tells whether the files changed: certbot replaces them (or the symlinks to
// them), which moves their modification times and usually their sizes.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// Load reads the certificate and key, failing when they cannot be used: serve then
// refuses to start, naming the variables.
func Load(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is tls.Config's GetCertificate: the certificate loaded last.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// Reload reads the files again. On failure the certificate in use stays, and the
// error says why.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	st, err := r.stat()
	if err == nil {
		err = r.load()
	}
	if err != nil {
		r.failed, r.failing = st, true
		return err
	}
	r.loaded, r.failed, r.failing = st, stamp{}, false
	leaf := r.cert.Load().Leaf
	r.logger.Info("tls certificate loaded", "cert_file", r.certFile, "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (r *Reloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS_CERT_FILE %s and TLS_KEY_FILE %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&cert) // Go 1.23+ fills cert.Leaf
	return nil
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("TLS_CERT_FILE: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("TLS_KEY_FILE: %w", err)
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// Run reloads on every value from reload (serve sends SIGHUP there) and, on every
// tick of poll, when the files changed since they were read, until ctx ends. A failure
// is logged and the certificate in use stays.
func (r *Reloader) Run(ctx context.Context, reload <-chan os.Signal, poll <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			if err := r.Reload(); err != nil {
				r.logger.Warn("tls certificate: reload failed, serving the one loaded before", "err", err)
			}
		case <-poll:
			r.reloadIfChanged()
		}
	}
}

func (r *Reloader) reloadIfChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stat() // on error st is zero, as failed is after a missing file
	if (err == nil && st == r.loaded) || (r.failing && st == r.failed) {
		return
	}
	if err := r.reloadLocked(); err != nil {
		r.logger.Warn("tls certificate: the files changed but do not load, serving the one loaded before", "err", err)
	}
}
