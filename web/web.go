// Package web is the dashboard homeowners open at /: one HTML page with its script,
// styles and charting library, embedded in the binary so `sungrow serve` needs no
// files beside it and no Node at run time. The page reads only the JSON API.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The page is kept apart from static/ so /static/ serves assets only.
//
//go:embed index.html static
var files embed.FS

// contentSecurityPolicy allows the page nothing but its own origin: every script and
// style is a file under /static/ (no inline code), and the API is same-origin, so an
// injected script or a stray third-party request is refused by the browser.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure sets the headers every dashboard response carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY") // for browsers that predate frame-ancestors
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Page serves the dashboard page.
func Page() http.Handler {
	page, err := files.ReadFile("index.html")
	if err != nil {
		return broken(fmt.Errorf("read embedded index.html: %w", err))
	}
	etag := etagOf(page)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Revalidate every time so a new binary's page is seen at once; the ETag
		// keeps that a 304.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(page)
	})
}

// Assets serves the files under static/ at /static/. Embedded files carry no
// modification time, so each gets an ETag from its content instead.
func Assets() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		return broken(fmt.Errorf("open embedded static/: %w", err))
	}
	etags := map[string]string{}
	err = fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		etags["/"+p] = etagOf(b)
		return nil
	})
	if err != nil {
		return broken(fmt.Errorf("hash embedded static files: %w", err))
	}
	files := http.StripPrefix("/static", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		name := path.Clean("/" + strings.TrimPrefix(r.URL.Path, "/static/"))
		etag, ok := etags[name]
		if !ok {
			// No directory listings, and one plain 404 for anything unknown.
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag) // http.ServeContent answers If-None-Match with it
		files.ServeHTTP(w, r)
	})
}

// broken answers 500 for a handler that could not be built. go:embed checks at compile
// time that the files exist, so this only guards against a mistake in this package.
func broken(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "dashboard unavailable: "+err.Error(), http.StatusInternalServerError)
	})
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
