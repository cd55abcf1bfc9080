package postfix

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

var testLimits = Limits{MaxLine: 64, MaxAttrs: 4}

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []Request
		wantErr error
	}{
		{"one request", "request=smtpd_access_policy\nsender=a@b.io\n\n",
			[]Request{{"request": "smtpd_access_policy", "sender": "a@b.io"}}, io.EOF},
		{"two requests on one connection", "a=1\n\nb=2\n\n", []Request{{"a": "1"}, {"b": "2"}}, io.EOF},
		{"CRLF tolerated", "a=1\r\nb=x=y\r\n\r\n", []Request{{"a": "1", "b": "x=y"}}, io.EOF},
		{"empty value", "sender=\n\n", []Request{{"sender": ""}}, io.EOF},
		{"repeated name keeps the last", "a=1\na=2\n\n", []Request{{"a": "2"}}, io.EOF},
		{"stray empty lines between requests", "\n\na=1\n\n", []Request{{"a": "1"}}, io.EOF},
		{"empty input", "", nil, io.EOF},
		{"truncated request", "a=1\nb=2", nil, io.ErrUnexpectedEOF},
		{"truncated after a full line", "a=1\n", nil, io.ErrUnexpectedEOF},
		{"line without =", "garbage\n\n", nil, ErrMalformedLine},
		{"empty name", "=x\n\n", nil, ErrMalformedLine},
		{"line too long", "a=" + strings.Repeat("x", 100) + "\n\n", nil, ErrLineTooLong},
		{"line at the limit", "a=" + strings.Repeat("x", 62) + "\n\n", []Request{{"a": strings.Repeat("x", 62)}}, io.EOF},
		{"too many attributes", "a=1\nb=1\nc=1\nd=1\ne=1\n\n", nil, ErrTooManyAttrs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in), testLimits)
			var got []Request
			for {
				req, err := ReadRequest(r, testLimits)
				if err != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("error %v, want %v", err, tc.wantErr)
					}
					break
				}
				got = append(got, req)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d requests %v, want %v", len(got), got, tc.want)
			}
			for i := range got {
				if !maps.Equal(got[i], tc.want[i]) {
					t.Errorf("request %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestReplyWrite(t *testing.T) {
	var b bytes.Buffer
	if err := (Reply{Action: "DEFER_IF_PERMIT 4.7.1 paused"}).Write(&b); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "action=DEFER_IF_PERMIT 4.7.1 paused\n\n" {
		t.Errorf("reply %q", got)
	}
}

// FuzzReadRequest: ReadRequest never panics, never returns more than the
// limits allow, and what it returns survives WriteRequest → ReadRequest.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@b.io\nrecipient=c@d.io\n\n",
		"a=1\r\n\r\nb=2\n\n", "=\n\n", "x\n", "\n\n\n", "a=b=c\n\nq",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxLine: 256, MaxAttrs: 16}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), lim)
		for {
			req, err := ReadRequest(r, lim)
			if err != nil {
				return
			}
			if len(req) > lim.MaxAttrs {
				t.Fatalf("%d attributes over the limit", len(req))
			}
			var b bytes.Buffer
			if err := WriteRequest(&b, req); err != nil {
				t.Fatal(err)
			}
			back, err := ReadRequest(NewReader(&b, Limits{MaxLine: 1 << 20, MaxAttrs: 1 << 10}), Limits{MaxLine: 1 << 20, MaxAttrs: 1 << 10})
			if err != nil {
				t.Fatalf("round trip of %q: %v", b.String(), err)
			}
			// A trailing "\r" of a value is dropped on read; the round
			// trip of what was read is exact otherwise.
			for k, v := range req {
				if strings.ContainsAny(k, "\n=") || strings.Contains(v, "\n") {
					t.Fatalf("attribute %q=%q holds a separator", k, v)
				}
				if bv, ok := back[k]; !ok || (bv != v && bv != strings.TrimSuffix(v, "\r")) {
					t.Fatalf("round trip: %q=%q came back as %q", k, v, bv)
				}
			}
			if len(back) != len(req) {
				t.Fatalf("round trip: %v came back as %v", req, back)
			}
		}
	})
}
