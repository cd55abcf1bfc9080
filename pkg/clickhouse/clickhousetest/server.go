package clickhousetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// DefaultAddr is the test server's native address when SENDGUARD_CLICKHOUSE
// is unset (scripts/clickhouse.sh starts one there).
const DefaultAddr = "127.0.0.1:9000"

// Server returns the address of the real test server (env
// SENDGUARD_CLICKHOUSE, default DefaultAddr) and the name of a fresh,
// uniquely named database on it, dropped when the test ends. When the server
// does not answer, the test fails if env CI is "true" (CI must never skip
// integration tests) and is skipped otherwise.
func Server(t testing.TB) (addr, database string) {
	t.Helper()
	addr = os.Getenv("SENDGUARD_CLICKHOUSE")
	if addr == "" {
		addr = DefaultAddr
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default"},
		DialTimeout: 3 * time.Second,
	})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = conn.Ping(ctx)
		cancel()
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("clickhouse test server %s unreachable (run scripts/clickhouse.sh): %v", addr, err)
		}
		t.Skipf("clickhouse test server %s unreachable (run scripts/clickhouse.sh): %v", addr, err)
	}
	database = "sgtest_" + sanitize(t.Name()) + "_" + randomHex(4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE `"+database+"`"); err != nil {
		_ = conn.Close()
		t.Fatalf("create test database %s: %v", database, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+database+"`"); err != nil {
			t.Errorf("drop test database %s: %v", database, err)
		}
		_ = conn.Close()
	})
	return addr, database
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}
