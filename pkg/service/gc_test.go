package service

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	pct, limit := TuneGC()
	if pct != DefaultGCPercent {
		t.Fatalf("GOGC unset: %d%%, want %d", pct, DefaultGCPercent)
	}
	if avail := availableMemory(); avail <= 0 || limit != int64(float64(avail)*DefaultMemoryShare) {
		t.Fatalf("GOMEMLIMIT unset: limit %d of %d available", limit, avail)
	}

	// Explicit settings win.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if pct, limit := TuneGC(); pct != 150 || limit != 1<<30 {
		t.Fatalf("explicit: %d%%, limit %d", pct, limit)
	}
}
