package kafka

import (
	"slices"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
)

func rec(key, value string) Message {
	m := kafkago.Message{Key: []byte(key)}
	if value != "" {
		m.Value = []byte(value)
	}
	return message{m}
}

// TestLatest: the newest record of a key wins, a tombstone removes the key,
// a key back after a tombstone is listed once, keys in first-seen order.
func TestLatest(t *testing.T) {
	var l Latest
	for _, m := range []Message{
		rec("a", "a1"), rec("b", "b1"), rec("a", "a2"), rec("c", "c1"),
		rec("b", ""), rec("c", ""), rec("c", "c2"), rec("d", ""),
	} {
		l.Add(m)
	}
	var got []string
	if err := l.Each(func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=a2", "c=c2"}; !slices.Equal(got, want) {
		t.Fatalf("Each = %v, want %v", got, want)
	}
	if l.Len() != 2 || string(l.Map()["a"]) != "a2" || l.Map()["b"] != nil {
		t.Fatalf("Len %d, Map %v", l.Len(), l.Map())
	}
	var empty Latest
	empty.Add(rec("x", ""))
	if empty.Len() != 0 || empty.Each(func(string, []byte) error { t.Fatal("called"); return nil }) != nil {
		t.Fatal("an empty Latest holds something")
	}
}
