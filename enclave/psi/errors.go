package psi

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed: a message that does not decode, or an element that is not the canonical encoding
	// of a ristretto255 element other than the identity.
	ErrMalformed = errors.New("malformed PSI message")
	// ErrReplay: a batch or page number answered before (other than the retransmission of the last
	// message) or skipping ahead.
	ErrReplay = errors.New("replayed or out-of-order PSI message")
	// ErrSession: no open session of the calling bank has this id (never opened, expired, closed, or
	// another bank's).
	ErrSession = errors.New("no such open PSI session")
	// ErrLimit: more elements than the session allows, or more open sessions than the enclave keeps.
	ErrLimit = errors.New("PSI limit exceeded")
	// ErrRequest: an open request naming a dataset or purpose that is not valid.
	ErrRequest = errors.New("invalid PSI request")
)

// Error is a refused or failed protocol step: the message type, the session and the batch or page
// number it concerns, and why. The enclave's refusals reach the bank as *Error; a bank never retries
// one.
type Error struct {
	Op      string // the message type, "decode" when the type is unknown, or "reply"
	Session string // hex id, empty before a session exists
	Seq     int64  // batch or page number, -1 when none
	Err     error  // one of the sentinels, possibly wrapping a cause
	Detail  string
}

func (e *Error) Error() string {
	s := "psi " + e.Op
	if e.Seq >= 0 {
		s += fmt.Sprintf(" %d", e.Seq)
	}
	if e.Session != "" {
		s += " of session " + e.Session[:min(8, len(e.Session))]
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) *Error {
	return &Error{Op: "decode", Seq: -1, Err: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

func refuse(m *Message, err error, format string, args ...any) *Error {
	e := &Error{Op: m.Type.String(), Seq: int64(m.Seq), Err: err, Detail: fmt.Sprintf(format, args...)}
	if m.Type == TypeOpen || m.Type == TypeClose {
		e.Seq = -1
	}
	if m.Session != (SessionID{}) {
		e.Session = m.Session.String()
	}
	return e
}
