package service

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
)

// DefaultGCPercent is the GOGC the binaries run with unless GOGC is set:
// their heaps are allocation-heavy, so collecting at 5× the live heap
// instead of 2× cuts the collector's CPU (about 10 % of the pipeline's at
// GOGC=100) for memory they can spare — within the soft limit TuneGC sets.
const DefaultGCPercent = 400

// DefaultMemoryShare is the share of the memory available to the process
// (the cgroup's memory.max, else the machine's) that TuneGC makes the soft
// memory limit unless GOMEMLIMIT is set: near it the collector runs as
// often as needed, whatever GOGC says.
const DefaultMemoryShare = 0.5

// TuneGC applies DefaultGCPercent unless GOGC is set, and a soft memory
// limit of DefaultMemoryShare of the available memory unless GOMEMLIMIT is
// set (in Kubernetes, set GOMEMLIMIT from the container's limit). It
// returns the GC percentage and the memory limit in effect (math.MaxInt64:
// none).
func TuneGC() (gcPercent int, memLimit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	gcPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	if os.Getenv("GOMEMLIMIT") == "" {
		if avail := availableMemory(); avail > 0 {
			debug.SetMemoryLimit(int64(float64(avail) * DefaultMemoryShare))
		}
	}
	return gcPercent, debug.SetMemoryLimit(-1)
}

// availableMemory returns the cgroup v2 memory limit when there is one,
// else the machine's total memory, in bytes; 0 when unknown.
func availableMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) >= 2 && string(fields[0]) == "MemTotal:" {
			kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
