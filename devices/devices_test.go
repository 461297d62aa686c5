package devices

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/sungrow/sungrow/db"
	"github.com/sungrow/sungrow/internal/testenv"
)

func TestNewToken(t *testing.T) {
	is := is.New(t)
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := NewToken()
		is.NoErr(err)
		is.True(regexp.MustCompile(`^sg_[A-Za-z0-9_-]{43}$`).MatchString(tok)) // URL-safe, recognisable
		raw, err := base64.RawURLEncoding.DecodeString(tok[len(TokenPrefix):])
		is.NoErr(err)
		is.Equal(len(raw), 32) // 256 bits
		is.Equal(hash, Hash(sha256.Sum256([]byte(tok))))
		is.True(!seen[tok])
		seen[tok] = true
	}
}

func TestStatic(t *testing.T) {
	is := is.New(t)
	r := Static(map[string]string{"tok-a": "a", "tok-b": "b"})
	g, ok := r.Authenticate("tok-a")
	is.True(ok)
	is.Equal(g, Grant{Device: "a", Scope: ReadWrite}) // DEVICE_TOKENS entries may write
	_, ok = r.Authenticate("tok-c")
	is.True(!ok)
	is.Equal(r.Tokens(), 2)
	is.NoErr(r.CheckTokens(context.Background()))
	is.True(Static(nil).CheckTokens(context.Background()) != nil) // no token: not ready
	r.Run(context.Background())                                   // nothing to follow: returns at once
}

// clock is a pinned clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRegistryFollowsTheTable(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		admin := NewAdmin(d.Pool)
		_, first, err := admin.AddDevice(ctx, "inverter-a", "House", 5*time.Second, "roof")
		is.NoErr(err)

		r, err := Open(ctx, d.Pool, map[string]string{
			"env-a": "inverter-a", // the table defines inverter-a: ignored
			"env-b": "inverter-b", // only in DEVICE_TOKENS: works
		}, Options{})
		is.NoErr(err)
		auth := func(tok string) string {
			g, ok := r.Authenticate(tok)
			if !ok {
				return "401"
			}
			if g.Scope == ReadOnly {
				return g.Device + " (read-only)"
			}
			return g.Device
		}
		is.Equal(auth(first.Secret), "inverter-a")
		is.Equal(auth("env-a"), "401")
		is.Equal(auth("env-b"), "inverter-b")
		is.Equal(auth("sg_nope"), "401")

		// inverter-a sets its own interval; inverter-b (DEVICE_TOKENS only) does not.
		iv, ok := r.SampleInterval("inverter-a")
		is.True(ok)
		is.Equal(iv, 5*time.Second)
		_, ok = r.SampleInterval("inverter-b")
		is.True(!ok)

		// Nothing changed: the snapshot stays.
		before := r.state.Load()
		is.NoErr(r.Refresh(ctx))
		is.True(r.state.Load() == before)

		second, err := admin.AddToken(ctx, "inverter-a", "spare", ReadWrite)
		is.NoErr(err)
		is.Equal(auth(second.Secret), "401") // not before a refresh...
		is.NoErr(r.Refresh(ctx))
		is.Equal(auth(second.Secret), "inverter-a") // ...and at once after

		screen, err := admin.AddToken(ctx, "inverter-a", "kitchen", ReadOnly)
		is.NoErr(err)
		is.Equal(screen.Scope, ReadOnly)
		is.NoErr(r.Refresh(ctx))
		is.Equal(auth(screen.Secret), "inverter-a (read-only)")
		// The scope is a change of authentication: a hand-written UPDATE of it reaches
		// serve, as a revocation does.
		_, err = d.Pool.Exec(ctx, "UPDATE sungrow_tokens SET read_only = false WHERE id = $1", screen.ID)
		is.NoErr(err)
		is.NoErr(r.Refresh(ctx))
		is.Equal(auth(screen.Secret), "inverter-a")
		_, _, err = admin.RevokeToken(ctx, screen.ID)
		is.NoErr(err)

		_, was, err := admin.RevokeToken(ctx, first.ID)
		is.NoErr(err)
		is.True(!was)
		is.NoErr(r.Refresh(ctx))
		is.Equal(auth(first.Secret), "401")
		is.Equal(auth(second.Secret), "inverter-a")

		// A device added over DEVICE_TOKENS takes them over.
		_, b, err := admin.AddDevice(ctx, "inverter-b", "", 0, "")
		is.NoErr(err)
		is.NoErr(r.Refresh(ctx))
		_, ok = r.SampleInterval("inverter-b") // no --interval: SAMPLE_INTERVAL_S
		is.True(!ok)
		is.Equal(auth("env-b"), "401")
		is.Equal(auth(b.Secret), "inverter-b")

		// Removed: every token refused, and DEVICE_TOKENS does not bring it back.
		res, err := admin.RemoveDevice(ctx, "inverter-b", false)
		is.NoErr(err)
		is.Equal(res.RevokedTokens, int64(1))
		is.NoErr(r.Refresh(ctx))
		is.Equal(auth(b.Secret), "401")
		is.Equal(auth("env-b"), "401")
		is.Equal(r.Tokens(), 1)
	})
}

func TestLastUseIsWrittenAtMostOnceAMinute(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		is := is.New(t)
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		admin := NewAdmin(d.Pool)
		_, tok, err := admin.AddDevice(ctx, "inverter-a", "", 0, "")
		is.NoErr(err)
		r, err := Open(ctx, d.Pool, nil, Options{Now: c.now})
		is.NoErr(err)
		lastUsed := func() *time.Time {
			list, err := admin.ListTokens(ctx, "inverter-a")
			is.NoErr(err)
			return list[0].LastUsedAt
		}
		queued := func() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.touched) }

		is.True(lastUsed() == nil)
		for range 100 {
			r.Authenticate(tok.Secret)
		}
		is.Equal(queued(), 1) // a hundred requests, one write queued
		is.NoErr(r.Flush(ctx))
		is.Equal(queued(), 0)
		is.True(lastUsed().Equal(c.now()))

		// The write did not count as a change of the tokens: no reload.
		before := r.state.Load()
		is.NoErr(r.Refresh(ctx))
		is.True(r.state.Load() == before)

		c.add(59 * time.Second)
		r.Authenticate(tok.Secret)
		is.Equal(queued(), 0) // within the minute: nothing
		c.add(2 * time.Second)
		r.Authenticate(tok.Secret)
		is.Equal(queued(), 1)
		is.NoErr(r.Flush(ctx))
		is.True(lastUsed().Equal(c.now()))

		// Another instance that loaded the token before cannot write it again within
		// the minute either: the statement skips it.
		other, err := Open(ctx, d.Pool, nil, Options{Now: c.now})
		is.NoErr(err)
		other.touched[tok.ID] = struct{}{}
		written := c.now()
		c.add(10 * time.Second)
		is.NoErr(other.Flush(ctx))
		is.True(lastUsed().Equal(written))
	})
}

func TestAdminRefusesBadInputAndChangesNothing(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, d *testenv.DB) {
		ctx := context.Background()
		admin := NewAdmin(d.Pool)
		_, tok, err := admin.AddDevice(ctx, "inverter-a", "", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		version := func() int64 {
			v, err := db.New(d.Pool).AuthVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		v := version()
		for _, tc := range []struct {
			name string
			do   func() error
			want error
		}{
			{"duplicate id", func() error { _, _, err := admin.AddDevice(ctx, "inverter-a", "", 0, ""); return err }, ErrDeviceExists},
			{"empty id", func() error { _, _, err := admin.AddDevice(ctx, "", "", 0, ""); return err }, ErrInvalidID},
			{"id with braces", func() error { _, _, err := admin.AddDevice(ctx, "a{1}", "", 0, ""); return err }, ErrInvalidID},
			{"id with spaces around", func() error { _, _, err := admin.AddDevice(ctx, " a", "", 0, ""); return err }, ErrInvalidID},
			{"interval too long", func() error { _, _, err := admin.AddDevice(ctx, "b", "", 2*time.Hour, ""); return err }, ErrBadInterval},
			{"token for unknown device", func() error { _, err := admin.AddToken(ctx, "nope", "", ReadOnly); return err }, ErrUnknownDevice},
			{"unknown scope", func() error { _, err := admin.AddToken(ctx, "inverter-a", "", "admin"); return err }, ErrBadScope},
			{"remove unknown device", func() error { _, err := admin.RemoveDevice(ctx, "nope", true); return err }, ErrUnknownDevice},
			{"revoke unknown token", func() error { _, _, err := admin.RevokeToken(ctx, tok.ID+100); return err }, ErrUnknownToken},
		} {
			t.Run(tc.name, func(t *testing.T) {
				is := is.New(t)
				err := tc.do()
				is.True(errors.Is(err, tc.want))
				is.Equal(version(), v) // no change reached the tables
			})
		}
	})
}

// BenchmarkAuthenticate: the cost of a request's token check with 1 and with 100 000
// tokens in memory (one hash and one map lookup either way), and of the comparison with
// every token in turn that it replaced.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		tokens := make(map[string]string, n)
		var last string
		for i := range n {
			last = fmt.Sprintf("sg_bench-token-%d", i)
			tokens[last] = fmt.Sprintf("device-%d", i)
		}
		r := Static(tokens)
		b.Run(fmt.Sprintf("map/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, ok := r.Authenticate(last); !ok {
					b.Fatal("refused")
				}
			}
		})
		hashes := make([]Hash, 0, n)
		for tok := range tokens {
			hashes = append(hashes, HashToken(tok))
		}
		b.Run(fmt.Sprintf("loop/%d", n), func(b *testing.B) {
			for b.Loop() {
				offered := HashToken(last)
				found := false
				for i := range hashes {
					if subtle.ConstantTimeCompare(offered[:], hashes[i][:]) == 1 {
						found = true
					}
				}
				if !found {
					b.Fatal("refused")
				}
			}
		})
	}
}
