package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/httpapi"
)

// TestPageAndAssets checks the routes and headers of the dashboard through the real
// router: the page only at /, assets under /static/, the lock-down headers on both.
func TestPageAndAssets(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Logger: discardLogger(),
		Tokens: map[string]string{token: "inverter-dash"},
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, status, contentType, body string
	}{
		{"/", "200", "text/html", `<script src="/static/app.js"`},
		{"/static/app.js", "200", "text/javascript", "use strict"},
		{"/static/app.css", "200", "text/css", "prefers-color-scheme: dark"},
		{"/static/uPlot.iife.min.js", "200", "text/javascript", "uPlot (v1.6.32)"},
		{"/static/icon.svg", "200", "image/svg+xml", "<svg"},
		{"/index.html", "404", "", ""},        // GET /{$} is / alone
		{"/nothing-here", "404", "", ""},      // no catch-all page
		{"/static/", "404", "", ""},           // no directory listing
		{"/static/missing.js", "404", "", ""}, // unknown asset
	} {
		t.Run(tc.path, func(t *testing.T) {
			is := is.New(t)
			res, err := http.Get(srv.URL + tc.path)
			is.NoErr(err)
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			is.Equal(res.Status[:3], tc.status)
			if tc.status != "200" {
				return
			}
			is.True(strings.HasPrefix(res.Header.Get("Content-Type"), tc.contentType))
			is.True(strings.Contains(string(b), tc.body))
			csp := res.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "script-src 'self';", "style-src 'self';",
				"connect-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			is.True(!strings.Contains(csp, "unsafe-inline"))
			is.Equal(res.Header.Get("X-Content-Type-Options"), "nosniff")
			is.Equal(res.Header.Get("Referrer-Policy"), "no-referrer")
			is.True(res.Header.Get("ETag") != "")

			// Revalidation answers 304 without the body.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			req.Header.Set("If-None-Match", res.Header.Get("ETag"))
			again, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			again.Body.Close()
			is.Equal(again.StatusCode, http.StatusNotModified)
		})
	}

	// The page holds no inline script or style: the CSP would block it.
	is := is.New(t)
	res, err := http.Get(srv.URL + "/")
	is.NoErr(err)
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, bad := range []string{"<script>", "<style", " style=", "onclick", "onload", "http://", "https://"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
}
