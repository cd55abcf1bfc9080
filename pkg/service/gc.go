package service

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the GOGC the binaries run with unless GOGC is set:
// their live heaps are small (tens of MB) and allocation-heavy, so
// collecting at 5× the live heap instead of 2× cuts the collector's CPU
// (about 10 % of the pipeline's at GOGC=100) for memory they can spare. Set
// GOMEMLIMIT under a container limit so the heap never outgrows it.
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent unless the GOGC variable is set, and
// returns the percentage in effect.
func TuneGC() int {
	if v := os.Getenv("GOGC"); v != "" {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}
