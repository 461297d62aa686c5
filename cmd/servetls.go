package cmd

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sungrow/sungrow/config"
	"github.com/sungrow/sungrow/tlscert"
)

// certPoll is how often serve looks whether the certificate files changed, so a
// renewal is in use within a minute even when nothing sends SIGHUP.
const certPoll = 30 * time.Second

// startTLS loads TLS_CERT_FILE and TLS_KEY_FILE and keeps them current (on SIGHUP and
// when the files change) until stop; nil config when serve speaks plain HTTP.
func startTLS(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *tls.Config, stop func(), err error) {
	if !cfg.TLS() {
		return nil, func() {}, nil
	}
	certs, err := tlscert.Load(cfg.TLSCertFile, cfg.TLSKeyFile, logger)
	if err != nil {
		return nil, nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	poll := time.NewTicker(certPoll)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); certs.Run(ctx, hup, poll.C) }()
	stop = func() {
		cancel()
		<-done
		signal.Stop(hup)
		poll.Stop()
	}
	return &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}, stop, nil
}
