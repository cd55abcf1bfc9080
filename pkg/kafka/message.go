package kafka

import (
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Message is one consumed record. Implementations are read-only.
type Message interface {
	Topic() string
	Partition() int
	Offset() int64
	Key() []byte
	Value() []byte
	Time() time.Time
	// Header returns the value of the first header named name, or nil.
	Header(name string) []byte
}

// Record is one record to produce.
type Record struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string][]byte
}

type message struct{ m kafkago.Message }

func (m message) Topic() string   { return m.m.Topic }
func (m message) Partition() int  { return m.m.Partition }
func (m message) Offset() int64   { return m.m.Offset }
func (m message) Key() []byte     { return m.m.Key }
func (m message) Value() []byte   { return m.m.Value }
func (m message) Time() time.Time { return m.m.Time }

func (m message) Header(name string) []byte {
	for _, h := range m.m.Headers {
		if h.Key == name {
			return h.Value
		}
	}
	return nil
}

// PermanentError marks a handler error that retrying cannot fix: the message
// goes to the dead-letter topic with Reason and processing continues.
type PermanentError struct {
	// Handler names what failed, e.g. "sendgrid".
	Handler string
	Err     error
}

func (e *PermanentError) Error() string {
	if e.Handler == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Handler, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError attributed to handler.
func Permanent(handler string, err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Handler: handler, Err: err}
}

// IsPermanent reports whether err is (or wraps) a PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}
