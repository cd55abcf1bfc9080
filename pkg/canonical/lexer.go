package canonical

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// lexer reads the JSON subset the canonical form needs. The form has no
// arrays and every object key is checked against the schema before its
// value is read, so the decoder never has to skip a value: it reads exactly
// the value the schema expects or reports the mismatch. Syntax follows RFC
// 8259; invalid UTF-8 inside strings becomes U+FFFD, as encoding/json does.
type lexer struct {
	data []byte
	pos  int
	// vals[:nvals] holds the decoded bytes of the string values the event
	// keeps, kept[:nkept] where each goes; setKept makes them strings.
	vals  [256]byte
	nvals int
	kept  [32]keptString
	nkept int
}

// keptString is a string value of the event: vals[start:end] goes to *dst.
type keptString struct {
	dst        *string
	start, end int
}

// keep records that the string value b goes to *dst, or sets *dst to a
// string of its own when vals or kept is full; an empty value is left as
// it is ("").
func (l *lexer) keep(b []byte, dst *string) {
	switch {
	case len(b) == 0:
	case l.nkept == len(l.kept) || len(b) > len(l.vals)-l.nvals:
		*dst = string(b)
	default:
		start := l.nvals
		l.nvals += copy(l.vals[start:], b)
		l.kept[l.nkept] = keptString{dst: dst, start: start, end: l.nvals}
		l.nkept++
	}
}

// setKept sets the strings recorded by keep, all substrings of one string.
func (l *lexer) setKept() {
	if l.nkept == 0 {
		return
	}
	s := string(l.vals[:l.nvals])
	for _, k := range l.kept[:l.nkept] {
		*k.dst = s[k.start:k.end]
	}
}

func (l *lexer) skipWS() {
	for l.pos < len(l.data) {
		switch l.data[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (l *lexer) peek() byte {
	l.skipWS()
	if l.pos >= len(l.data) {
		return 0
	}
	return l.data[l.pos]
}

func (l *lexer) eof() bool { return l.peek() == 0 && l.pos >= len(l.data) }

// syntax builds the error for a malformed input at the current position.
func (l *lexer) syntax(path string) *FieldError {
	if l.pos >= len(l.data) {
		return fieldErr(path, "unexpected end of JSON input")
	}
	return fieldErr(path, "malformed JSON at offset %d: unexpected %s", l.pos, quoteByte(l.data[l.pos]))
}

// expect consumes byte c (after white space) or fails.
func (l *lexer) expect(c byte, path string) error {
	if l.peek() != c {
		return l.syntax(path)
	}
	l.pos++
	return nil
}

// kind describes the value starting at the next byte, for type errors.
func (l *lexer) kind() string {
	switch c := l.peek(); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || ('0' <= c && c <= '9'):
		return "a number"
	}
	return "invalid JSON"
}

// readLiteral consumes true, false or null.
func (l *lexer) readLiteral(word, path string) error {
	l.skipWS()
	if len(l.data)-l.pos < len(word) || string(l.data[l.pos:l.pos+len(word)]) != word {
		return l.syntax(path)
	}
	l.pos += len(word)
	return nil
}

// readNumberBytes consumes a JSON number and returns its text, a view of
// the input.
func (l *lexer) readNumberBytes(path string) ([]byte, error) {
	l.skipWS()
	start := l.pos
	d := l.data
	i := l.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		l.pos = i
		return nil, l.syntax(path)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			l.pos = i
			return nil, l.syntax(path)
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			l.pos = i
			return nil, l.syntax(path)
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	l.pos = i
	return d[start:i], nil
}

// readStringBytes consumes a JSON string and returns its decoded value: a
// view of the input when the string needs no decoding (no escapes, valid
// UTF-8), else a new slice. Either is valid until the input changes.
func (l *lexer) readStringBytes(path string) ([]byte, error) {
	if err := l.expect('"', path); err != nil {
		return nil, err
	}
	d := l.data
	start := l.pos
	// Fast path: no escapes, ASCII or valid UTF-8, no control characters.
	// Eight bytes at a time while they are plain ASCII, then one by one
	// from the first byte that is not.
	i := start
	for i+8 <= len(d) {
		if m := specialMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			i += bits.TrailingZeros64(m) / 8
			break
		}
		i += 8
	}
	var high byte // the OR of the bytes: bit 7 set once one is not ASCII
	for i < len(d) {
		c := d[i]
		if c == '"' {
			if high < utf8.RuneSelf || utf8.Valid(d[start:i]) {
				l.pos = i + 1
				return d[start:i], nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		high |= c
		i++
	}
	buf := make([]byte, 0, i-start+16)
	i = start
	for {
		if i >= len(d) {
			l.pos = i
			return nil, l.syntax(path)
		}
		c := d[i]
		switch {
		case c == '"':
			l.pos = i + 1
			return buf, nil
		case c < 0x20:
			l.pos = i
			return nil, l.syntax(path)
		case c == '\\':
			i++
			if i >= len(d) {
				l.pos = i
				return nil, l.syntax(path)
			}
			switch d[i] {
			case '"', '\\', '/':
				buf = append(buf, d[i])
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(d, i+1)
				if !ok {
					l.pos = i
					return nil, l.syntax(path)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if i+2 < len(d) && d[i+1] == '\\' && d[i+2] == 'u' {
						r2, ok = hex4(d, i+3)
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				l.pos = i
				return nil, l.syntax(path)
			}
			i++
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			buf = utf8.AppendRune(buf, r) // invalid bytes become U+FFFD
			i += size
		}
	}
}

// specialMask flags the bytes of x (little-endian: the first in the lowest
// bits) that are a quote, a backslash, a control character or not ASCII:
// the bytes a string's fast path stops at. It is not zero when one is, and
// its lowest set bit (the high bit of a byte) is then exactly that of the
// first: each term is the "some byte is zero / below n" word trick, whose
// borrows only mark bytes after a true one.
func specialMask(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x | x) & highs
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
