package postfix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const postfixBin = "/usr/sbin/postfix"

// requirePostfix returns when Debian's Postfix is installed (installing it
// with scripts/postfix.sh when missing). It skips the test when Postfix
// cannot be had, unless CI=true, where that is a failure.
func requirePostfix(t *testing.T) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Geteuid() != 0 {
		fail("the real Postfix test runs as root (postfix start, queue ownership)")
		return
	}
	if _, err := os.Stat(postfixBin); err == nil {
		return
	}
	out, err := exec.Command("bash", "../../scripts/postfix.sh").CombinedOutput()
	if err != nil {
		fail("postfix is not installed and scripts/postfix.sh failed: %v\n%s", err, out)
		return
	}
	if _, err := os.Stat(postfixBin); err != nil {
		fail("postfix still missing after scripts/postfix.sh: %v", err)
	}
}

// postfixInstance is a private Postfix: its own config, queue and data
// directories, smtpd on a loopback port, every message discarded.
type postfixInstance struct {
	dir  string
	smtp string
}

func (p *postfixInstance) run(args ...string) ([]byte, error) {
	cmd := exec.Command(postfixBin, append([]string{"-c", filepath.Join(p.dir, "etc")}, args...)...)
	return cmd.CombinedOutput()
}

// masterPID is the pid of the instance's master daemon, or 0.
func (p *postfixInstance) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

func (p *postfixInstance) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// startPostfix starts an instance whose smtpd asks the policy server at
// policyAddr for every recipient, and stops it when the test ends.
func startPostfix(t *testing.T, policyAddr string) *postfixInstance {
	t.Helper()
	dir, err := os.MkdirTemp("", "sendguard-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as the postfix user and must reach the queue.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &postfixInstance{dir: dir, smtp: freeAddr(t)}
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "queue")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(p.smtp)
	mainCF := strings.Join([]string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"maillog_file = " + filepath.Join(dir, "maillog"),
		"maillog_file_prefixes = " + dir,
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = sendguard-test.localdomain",
		"mydomain = localdomain",
		"mydestination =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"alias_maps =",
		"alias_database =",
		"smtputf8_enable = no",
		"biff = no",
		// Every message is accepted into the queue and discarded on delivery.
		"default_transport = discard:sendguard test",
		"relay_transport = discard:sendguard test",
		"smtpd_relay_restrictions = permit_mynetworks, reject",
		"smtpd_recipient_restrictions = check_policy_service inet:" + policyAddr + ", permit_mynetworks, reject",
		"smtpd_policy_service_timeout = 10s",
		"",
	}, "\n")
	// Not chrooted: the private queue has no copy of /etc.
	masterCF := strings.Join([]string{
		"127.0.0.1:" + port + " inet n - n - - smtpd",
		"pickup     unix  n - n 60  1 pickup",
		"cleanup    unix  n - n -   0 cleanup",
		"qmgr       unix  n - n 300 1 qmgr",
		"rewrite    unix  - - n -   - trivial-rewrite",
		"bounce     unix  - - n -   0 bounce",
		"defer      unix  - - n -   0 bounce",
		"trace      unix  - - n -   0 bounce",
		"verify     unix  - - n -   1 verify",
		"flush      unix  n - n 1000? 0 flush",
		"proxymap   unix  - - n -   - proxymap",
		"showq      unix  n - n -   - showq",
		"error      unix  - - n -   - error",
		"retry      unix  - - n -   - error",
		"discard    unix  - - n -   - discard",
		"anvil      unix  - - n -   1 anvil",
		"scache     unix  - - n -   1 scache",
		"postlog    unix-dgram n - n - 1 postlogd",
		"",
	}, "\n")
	for name, body := range map[string]string{"main.cf": mainCF, "master.cf": masterCF} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.run("start"); err != nil {
		log := p.log()
		_ = os.RemoveAll(dir)
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		pid := p.masterPID()
		if out, err := p.run("stop"); err != nil {
			t.Errorf("postfix stop: %v\n%s", err, out)
			_, _ = p.run("abort")
		}
		// postfix stop signals the master; wait until it is gone.
		for deadline := time.Now().Add(10 * time.Second); pid > 0 && syscall.Kill(pid, 0) == nil; {
			if time.Now().After(deadline) {
				t.Errorf("postfix master %d still running 10s after stop", pid)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", p.log())
		}
		_ = os.RemoveAll(dir)
	})
	// Wait for smtpd to greet.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.smtp, time.Second)
		if err == nil {
			_ = c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix smtpd never listened on %s: %v\n%s", p.smtp, err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// send speaks SMTP to addr and returns the SMTP code of the first failure
// (0 when the message was accepted: 250 after DATA) and the reply text.
func send(addr, from, to string) (int, string, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	code := func(err error) (int, string, error) {
		var te *textproto.Error
		if errors.As(err, &te) {
			return te.Code, te.Msg, nil
		}
		return 0, "", err
	}
	if err := c.Hello("client.sendguard.test"); err != nil {
		return code(err)
	}
	if err := c.Mail(from); err != nil {
		return code(err)
	}
	if err := c.Rcpt(to); err != nil {
		return code(err)
	}
	w, err := c.Data()
	if err != nil {
		return code(err)
	}
	msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: sendguard policy test\r\nMessage-ID: <%d@sendguard.test>\r\n\r\nhello\r\n",
		from, to, time.Now().UnixNano())
	if _, err := w.Write([]byte(msg)); err != nil {
		return 0, "", err
	}
	if err := w.Close(); err != nil { // net/smtp requires 250 here
		return code(err)
	}
	return 0, "", c.Quit()
}

// TestRealPostfix runs Debian's Postfix on loopback with our policy server
// (backed by a real enforcement state) in smtpd_recipient_restrictions and
// speaks SMTP to it.
func TestRealPostfix(t *testing.T) {
	requirePostfix(t)
	_, checker := enforcement(t)
	s, policyAddr := startServer(t, Config{}, checker)
	pf := startPostfix(t, policyAddr)

	for _, tc := range []struct {
		name, from, to string
		wantCode       int    // 0: accepted
		wantText       string // in the SMTP reply
	}{
		{"other mail is delivered", "ok@acme.io", "bob@example.com", 0, ""},
		{"paused sender is deferred (4xx)", "paused@acme.io", "bob@example.com", 450, "4.7.1"},
		{"suppressed recipient is rejected (5xx)", "ok@acme.io", "gone@example.com", 554, "5.7.1"},
		{"mail after a deferral on a new connection still flows", "ok@acme.io", "carol@example.com", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, text, err := send(pf.smtp, tc.from, tc.to)
			if err != nil {
				t.Fatalf("smtp: %v", err)
			}
			t.Logf("MAIL FROM:<%s> RCPT TO:<%s> → %d %s", tc.from, tc.to, code, text)
			if code != tc.wantCode || !strings.Contains(text, tc.wantText) {
				t.Errorf("SMTP %d %q, want %d containing %q", code, text, tc.wantCode, tc.wantText)
			}
			if tc.wantCode != 0 && !strings.Contains(text, "sendguard") {
				t.Errorf("reply %q does not carry the reason", text)
			}
		})
	}
	// Postfix asked us once per recipient.
	for verb, want := range map[string]float64{ActionDunno: 2, ActionDeferIfPermit: 1, ActionReject: 1} {
		if got := testutil.ToFloat64(s.requests.WithLabelValues(verb)); got != want {
			t.Errorf("%s answers: %v, want %v", verb, got, want)
		}
	}
	// Postfix asked us: the queue received the accepted messages.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil && !bytes.Contains([]byte(pf.log()), []byte("status=sent (sendguard test)")) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(pf.log(), "status=sent (sendguard test)") {
		t.Errorf("no delivery (discard) in the postfix log")
	}
}
