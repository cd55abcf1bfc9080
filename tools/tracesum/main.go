// Command tracesum summarizes a Go execution trace for the question "what
// held this goroutine up?": the garbage collector's mark phases and
// stop-the-world pauses in the window, and, for every goroutine whose stack
// ever contains -match, the time it spent running, runnable (waiting for a
// processor) and waiting, each wait by the stack it waited at. Times are
// relative to the end of the trace, which for the traces of
// `BenchmarkPipeline -bench.trace DIR` is the moment the slow spike's pause
// was read.
//
//	cd tools && GOWORK=off go run ./tracesum -match 'normalizer.(*Stage).Handle' -window 2s spike3.trace
//
// -timeline also lists the goroutines' segments of at least -min.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

func main() {
	var (
		match    = flag.String("match", "", "select goroutines whose stack ever contains this substring (required)")
		window   = flag.Duration("window", 2*time.Second, "summarize the last this long of the trace")
		depth    = flag.Int("depth", 4, "stack frames shown per wait")
		timeline = flag.Bool("timeline", false, "also list each selected goroutine's segments")
		minSeg   = flag.Duration("min", 20*time.Millisecond, "shortest segment -timeline lists")
	)
	flag.Parse()
	if *match == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tracesum -match SUBSTRING [-window D] [-timeline [-min D]] TRACE")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	defer f.Close()
	s, err := read(f, *match, *depth)
	if err != nil {
		fail(fmt.Errorf("read %s: %w", flag.Arg(0), err))
	}
	s.print(os.Stdout, *window, *timeline, *minSeg)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracesum:", err)
	os.Exit(1)
}

// segment is a stretch of one goroutine in one state.
type segment struct {
	state      trace.GoState
	start, end trace.Time
	at         string // the stack it waits at (waiting only)
}

// goroutine is one goroutine's history.
type goroutine struct {
	state trace.GoState
	since trace.Time
	at    string
	segs  []segment
}

// span is a global range of the runtime (a GC phase, a stop-the-world).
type span struct {
	name       string
	start, end trace.Time
}

type summary struct {
	first, last trace.Time
	gs          map[trace.GoID]*goroutine
	matched     map[trace.GoID]bool
	spans       []span
}

// read consumes the trace, following every goroutine's state and the
// runtime's global ranges.
func read(r io.Reader, match string, depth int) (*summary, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, err
	}
	s := &summary{gs: map[trace.GoID]*goroutine{}, matched: map[trace.GoID]bool{}}
	open := map[string]trace.Time{}
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		t := ev.Time()
		if s.first == 0 {
			s.first = t
		}
		s.last = t
		if g := ev.Goroutine(); g != trace.NoGoroutine && contains(ev.Stack(), match) {
			s.matched[g] = true
		}
		switch ev.Kind() {
		case trace.EventRangeBegin:
			if rg := ev.Range(); rg.Scope.Kind == trace.ResourceNone {
				open[rg.Name] = t
			}
		case trace.EventRangeEnd:
			rg := ev.Range()
			if start, ok := open[rg.Name]; ok {
				s.spans = append(s.spans, span{rg.Name, start, t})
				delete(open, rg.Name)
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := st.Resource.Goroutine()
			from, to := st.Goroutine()
			g := s.gs[id]
			if g == nil {
				g = &goroutine{state: from, since: s.first}
				s.gs[id] = g
			}
			if contains(st.Stack, match) {
				s.matched[id] = true
			}
			g.segs = append(g.segs, segment{g.state, g.since, t, g.at})
			g.state, g.since, g.at = to, t, top(st.Stack, depth)
		}
	}
}

func (s *summary) print(w io.Writer, window time.Duration, timeline bool, minSeg time.Duration) {
	cut := max(s.first, s.last-trace.Time(window.Nanoseconds()))
	before := func(t trace.Time) float64 { return float64(s.last-t) / 1e6 }
	fmt.Fprintf(w, "trace: %.0f ms; summary of the last %.0f ms (times in ms before the end)\n", float64(s.last-s.first)/1e6, float64(s.last-cut)/1e6)
	for _, sp := range s.spans {
		if sp.end >= cut && (strings.Contains(sp.name, "mark phase") || strings.Contains(sp.name, "stop-the-world")) {
			fmt.Fprintf(w, "runtime  %-42s -%.0f → -%.0f (%.1f ms)\n", sp.name, before(sp.start), before(sp.end), float64(sp.end-sp.start)/1e6)
		}
	}
	ids := make([]trace.GoID, 0, len(s.matched))
	for id := range s.matched {
		if s.gs[id] != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := s.gs[id]
		segs := append(g.segs, segment{g.state, g.since, s.last, g.at})
		sums := map[string]float64{}
		for _, sg := range segs {
			if sg.end < cut {
				continue
			}
			k := sg.state.String()
			if sg.state == trace.GoWaiting || sg.state == trace.GoSyscall {
				k += " at " + sg.at
			}
			sums[k] += float64(sg.end-max(sg.start, cut)) / 1e6
		}
		fmt.Fprintf(w, "goroutine %d\n", id)
		keys := make([]string, 0, len(sums))
		for k := range sums {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return int(sums[b] - sums[a]) })
		for _, k := range keys {
			if sums[k] >= 1 {
				fmt.Fprintf(w, "  %8.1f ms  %s\n", sums[k], k)
			}
		}
		if !timeline {
			continue
		}
		for _, sg := range segs {
			if sg.end >= cut && time.Duration(sg.end-sg.start) >= minSeg {
				fmt.Fprintf(w, "    -%7.1f  %7.1f ms  %-9s %s\n", before(sg.start), float64(sg.end-sg.start)/1e6, sg.state, sg.at)
			}
		}
	}
}

// contains reports whether a frame of st has sub in its function name.
func contains(st trace.Stack, sub string) bool {
	if st == trace.NoStack {
		return false
	}
	for f := range st.Frames() {
		if strings.Contains(f.Func, sub) {
			return true
		}
	}
	return false
}

// top renders the first n frames of st, innermost first.
func top(st trace.Stack, n int) string {
	if st == trace.NoStack {
		return ""
	}
	var fs []string
	for f := range st.Frames() {
		fn := f.Func
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			fn = fn[i+1:]
		}
		fs = append(fs, fmt.Sprintf("%s:%d", fn, f.Line))
		if len(fs) == n {
			break
		}
	}
	return strings.Join(fs, " < ")
}
