package classify

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// matcher is a compiled table pattern. The pattern's top-level
// alternatives are compiled one by one, each with a literal prefilter: an
// alternative runs only when the text contains one of the literals it
// requires, and strings.Contains is far cheaper than running a large
// alternation through the regexp engine. An alternative that requires no
// literal always runs.
type matcher struct {
	branches []branch
	// literals is the union of the branches' literals, nil when some
	// branch has none (kept for tests of the prefilter's soundness).
	literals []string
	re       *regexp.Regexp // the whole pattern, for reference
}

type branch struct {
	re       *regexp.Regexp
	literals []string // nil: no prefilter
}

func newMatcher(pattern string) matcher {
	m := matcher{re: regexp.MustCompile(pattern)}
	all := []string{}
	for _, alt := range splitAlternatives(pattern) {
		b := branch{re: regexp.MustCompile(alt)}
		if re, err := syntax.Parse(alt, syntax.Perl); err == nil {
			if lits, ok := requiredLiterals(re); ok {
				b.literals = lits
			}
		}
		if b.literals == nil {
			all = nil
		} else if all != nil {
			all = append(all, b.literals...)
		}
		m.branches = append(m.branches, b)
	}
	m.literals = all
	return m
}

// splitAlternatives splits a pattern at its top-level "|" (outside
// parentheses, classes and escapes).
func splitAlternatives(p string) []string {
	var out []string
	depth, start := 0, 0
	inClass := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// MatchString reports whether s (already lower-cased) matches.
func (m matcher) MatchString(s string) bool {
	for _, b := range m.branches {
		if b.literals != nil {
			hit := false
			for _, l := range b.literals {
				if strings.Contains(s, l) {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		if b.re.MatchString(s) {
			return true
		}
	}
	return false
}

// requiredLiterals returns a set of strings such that every match of re
// contains at least one of them, or false when it cannot tell. Only
// case-sensitive literals count (the tables are lower-case and matched
// against lower-cased text).
func requiredLiterals(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(re.Rune) < 2 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
		return nil, false
	case syntax.OpConcat:
		// Any required part will do; prefer the one with the longest
		// shortest literal (fewer false positives), and merge adjacent
		// literal runs into one string.
		var best []string
		bestLen := 0
		var run strings.Builder
		consider := func(lits []string) {
			min := -1
			for _, l := range lits {
				if min < 0 || len(l) < min {
					min = len(l)
				}
			}
			if min > bestLen {
				best, bestLen = lits, min
			}
		}
		flush := func() {
			if run.Len() >= 2 {
				consider([]string{run.String()})
			}
			run.Reset()
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				run.WriteString(string(sub.Rune))
				continue
			}
			flush()
			if lits, ok := requiredLiterals(sub); ok {
				consider(lits)
			}
		}
		flush()
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits, ok := requiredLiterals(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, true
	}
	return nil, false
}
