package classify

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// matcher is a compiled table pattern with a literal prefilter: a match is
// only possible when the text contains one of the literals the pattern
// requires, and strings.Contains is far cheaper than running a large
// alternation through the regexp engine. When the pattern requires no
// literal (a branch of only classes or optional parts), every text goes to
// the regexp.
type matcher struct {
	re       *regexp.Regexp
	literals []string // nil: no prefilter
}

func newMatcher(pattern string) matcher {
	m := matcher{re: regexp.MustCompile(pattern)}
	if re, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		if lits, ok := requiredLiterals(re); ok {
			m.literals = lits
		}
	}
	return m
}

// MatchString reports whether s (already lower-cased) matches.
func (m matcher) MatchString(s string) bool {
	if m.literals != nil {
		hit := false
		for _, l := range m.literals {
			if strings.Contains(s, l) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return m.re.MatchString(s)
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
