package clickhousetest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
)

func TestConnRecordsBatches(t *testing.T) {
	ctx := context.Background()
	failSend := errors.New("send failed")
	c := &Conn{OnSend: func(query string, rows [][]any) error {
		if len(rows) == 3 {
			return failSend
		}
		return nil
	}}
	tests := []struct {
		query string
		rows  [][]any
		err   error
	}{
		{"INSERT INTO events (a, b)", [][]any{{1, "x"}, {2, "y"}}, nil},
		{"INSERT INTO `db`.schema_migrations (version)", [][]any{{uint32(1)}}, nil},
		{"INSERT INTO events (a, b)", [][]any{{3, "z"}, {4, "w"}, {5, "v"}}, failSend},
	}
	for _, tt := range tests {
		b, err := c.PrepareBatch(ctx, tt.query)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range tt.rows {
			if err := b.Append(r...); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); !errors.Is(err, tt.err) {
			t.Fatalf("Send = %v, want %v", err, tt.err)
		}
		if err := b.Send(); err == nil {
			t.Error("second Send of a batch succeeded")
		}
	}
	if got := c.InsertedRows("events"); len(got) != 2 || got[1][1] != "y" {
		t.Errorf("events rows = %v, want the two rows of the successful batch", got)
	}
	if got := c.InsertedRows("schema_migrations"); len(got) != 1 {
		t.Errorf("schema_migrations rows = %v", got)
	}
	if got := len(c.Queries()); got != 3 {
		t.Errorf("%d queries recorded, want 3", got)
	}
}

func TestConnAppendErrorInvalidatesBatch(t *testing.T) {
	bad := errors.New("bad row")
	c := &Conn{OnAppend: func(_ string, row []any) error {
		if row[0] == "bad" {
			return bad
		}
		return nil
	}}
	b, _ := c.PrepareBatch(context.Background(), "INSERT INTO t (a)")
	if err := b.Append("bad"); !errors.Is(err, bad) {
		t.Fatalf("Append = %v", err)
	}
	if err := b.Append("good"); !errors.Is(err, bad) {
		t.Errorf("Append after a failed one = %v, want the batch to stay invalid", err)
	}
	if err := b.Send(); err == nil {
		t.Error("Send of an invalid batch succeeded")
	}
}

func TestConnQueries(t *testing.T) {
	ctx := context.Background()
	c := &Conn{OnQuery: func(query string, args []any) ([][]any, error) {
		if query == "SELECT n, s FROM t" {
			return [][]any{{uint32(7), "a"}, {uint32(8), "b"}}, nil
		}
		return nil, nil
	}}
	rows, err := c.Query(ctx, "SELECT n, s FROM t")
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for rows.Next() {
		var (
			n uint64 // convertible from uint32
			s string
		)
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if len(got) != 2 || got[1] != 8 {
		t.Errorf("scanned %v", got)
	}
	var s string
	if err := c.QueryRow(ctx, "SELECT nothing").Scan(&s); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("QueryRow without rows = %v, want sql.ErrNoRows", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT n, s FROM t").Scan(&n); err == nil {
		t.Error("Scan with too few destinations succeeded")
	}
	if err := c.QueryRow(ctx, "SELECT n, s FROM t").Scan(&n, &n); err == nil {
		t.Error("Scan of a string into an int succeeded")
	}
	v, err := c.ServerVersion()
	if err != nil || v.Version.Major != 18 || v.Version.Minor != 16 {
		t.Errorf("default ServerVersion = %+v, %v", v, err)
	}
}

func TestServerGivesFreshDatabase(t *testing.T) {
	addr, db := Server(t)
	if addr == "" || db == "" {
		t.Fatalf("Server returned %q, %q", addr, db)
	}
	_, db2 := Server(t)
	if db == db2 {
		t.Errorf("two calls returned the same database %s", db)
	}
}

func TestServerUnreachable(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("would fail by design: CI turns an unreachable server into a failure")
	}
	t.Setenv("SENDGUARD_CLICKHOUSE", "127.0.0.1:1")
	var skipped bool
	t.Run("skips", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Server(t)
	})
	if !skipped {
		t.Error("Server with an unreachable address did not skip")
	}
}
