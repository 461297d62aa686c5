package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// LogBuffer is a log destination that many goroutines may write while a test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address whose port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	return port
}

// Await polls ok until it holds, failing the test after timeout.
func Await(t testing.TB, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitHealthy polls base/health until it answers 200, as a load balancer would. It
// fails the test after 30 s, or at once when stopped (may be nil) says the server died.
func WaitHealthy(t testing.TB, base string, stopped <-chan error) {
	t.Helper()
	WaitHealthyWith(t, http.DefaultClient, base, stopped)
}

// WaitHealthyWith is WaitHealthy through client (one that trusts a test's certificate,
// for an HTTPS base).
func WaitHealthyWith(t testing.TB, client *http.Client, base string, stopped <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-stopped:
			t.Fatalf("the server stopped before it was healthy: %v", err)
		default:
		}
		res, err := client.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/health did not answer within 30 s", base)
}

// Redis is a redis-server of the test's own on a free port, which the test may stop
// and start again: the shared Redis is never stopped.
type Redis struct {
	Port, URL string
	cmd       *exec.Cmd
}

// StartRedis starts a Redis for this test and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	port := FreePort(t)
	r := &Redis{Port: port, URL: "redis://127.0.0.1:" + port + "/0"}
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server, empty, and waits until it answers.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.Port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := r.Client()
	defer c.Close()
	Await(t, "redis-server to answer", 10*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil })
}

// Stop kills the server (a crash, not a shutdown); stopping a stopped one does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Pause freezes the server (SIGSTOP): it keeps accepting connections and never
// answers, as a hung Redis does. Resume thaws it.
func (r *Redis) Pause(t testing.TB) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause redis-server: %v", err)
	}
}

// Resume thaws a paused server.
func (r *Redis) Resume(t testing.TB) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resume redis-server: %v", err)
	}
}

// Client connects to the server.
func (r *Redis) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.Port})
}

// Mosquitto is a broker of the test's own on a free port, with a password file, which
// the test may stop and start again: the shared broker on 1883 is never touched. It
// keeps nothing across a restart (no persistence), as a broker that lost its disk.
type Mosquitto struct {
	Port, User, Password string
	TLSPort              string // StartMosquittoTLS only
	dir                  string
	cmd                  *exec.Cmd
}

// StartMosquitto starts Debian's mosquitto for this test with one user and stops it
// when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return startMosquitto(t, false)
}

// StartMosquittoTLS is StartMosquitto with a second listener on TLSPort speaking TLS
// with a self-signed certificate for 127.0.0.1, which no system trusts.
func StartMosquittoTLS(t testing.TB) *Mosquitto {
	t.Helper()
	return startMosquitto(t, true)
}

func startMosquitto(t testing.TB, withTLS bool) *Mosquitto {
	t.Helper()
	bin := "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto)")
	}
	m := &Mosquitto{Port: FreePort(t), User: "sungrow", Password: UniqueName("pw"), dir: t.TempDir()}
	passwd := filepath.Join(m.dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", passwd, m.User, m.Password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	// Started as root, mosquitto would become user mosquitto, who cannot read the
	// test's private directory: stay who we are (ignored when not root).
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("allow_anonymous false\npassword_file %s\npersistence false\nuser %s\nlistener %s 127.0.0.1\n",
		passwd, me.Username, m.Port)
	if withTLS {
		m.TLSPort = FreePort(t)
		cert, key := filepath.Join(m.dir, "cert.pem"), filepath.Join(m.dir, "key.pem")
		WriteSelfSigned(t, cert, key)
		conf += fmt.Sprintf("listener %s 127.0.0.1\ncertfile %s\nkeyfile %s\n", m.TLSPort, cert, key)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start(t)
	t.Cleanup(m.Stop)
	return m
}

// WriteSelfSigned writes a new self-signed certificate for 127.0.0.1 and its key as
// PEM, and returns the certificate (DER), to compare with what a server presents.
func WriteSelfSigned(t testing.TB, certFile, keyFile string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return der
}

// URL is the broker's mqtt:// URL with the test user's credentials.
func (m *Mosquitto) URL() string {
	return (&url.URL{Scheme: "mqtt", User: url.UserPassword(m.User, m.Password), Host: "127.0.0.1:" + m.Port}).String()
}

// Start (re)starts the broker, empty, and waits until it accepts connections.
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	m.cmd = exec.Command("/usr/sbin/mosquitto", "-c", filepath.Join(m.dir, "mosquitto.conf"))
	var out LogBuffer
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	defer func() {
		if t.Failed() {
			t.Logf("mosquitto said: %s", out.String())
		}
	}()
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	Await(t, "mosquitto to accept connections", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+m.Port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Stop kills the broker (a crash: no will is delivered to anyone, clients see their
// connection drop); stopping a stopped one does nothing.
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}
