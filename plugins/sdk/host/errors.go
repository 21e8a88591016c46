package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, wrapped by *Error; map them to a run's reason with errors.Is. A context's error
// (context.DeadlineExceeded, context.Canceled) is reported through *Error as well.
var (
	// ErrProtocol: the plugin broke the protocol (malformed or out-of-order messages, a message over
	// the size limit, an invalid description, an unknown service, garbage on the connection).
	ErrProtocol = errors.New("plugin broke the protocol")
	// ErrOutputTooLarge: the plugin's output exceeds the job's limits (announced or actual), or the
	// plugin's SDK refused to send an output that does.
	ErrOutputTooLarge = errors.New("plugin output too large")
	// ErrInvalidOutput: the output is well framed but invalid: an undeclared kind, a value that is
	// not finite, a repeated or malformed name, a broken tree.
	ErrInvalidOutput = errors.New("plugin output invalid")
	// ErrPluginFailed: the plugin reported a failure (its Train or Describe returned an error, or it
	// refused the job). Detail holds the plugin's own message, sanitised: untrusted text.
	ErrPluginFailed = errors.New("plugin reported a failure")
	// ErrConnection: the connection to the plugin broke (the process exited or was killed, or
	// closed the connection). The runner finds the cause in the process's exit status.
	ErrConnection = errors.New("connection to the plugin lost")
	// ErrInput: reading the request's rows failed on the host: not the plugin's fault.
	ErrInput = errors.New("reading the rows to stream failed")
	// ErrRequest: the TrainRequest does not fit the plugin's description or the protocol (a mode
	// other than the declared one, rows in aggregate mode, a service the mode does not use, names
	// over the size limits). Not the plugin's fault.
	ErrRequest = errors.New("invalid train request")
)

// Error is a failure of Describe or Train.
type Error struct {
	// Op is "describe" or "train".
	Op string
	// Err is one of the sentinel errors, context.Canceled or context.DeadlineExceeded.
	Err error
	// Detail says what happened. When Err is ErrPluginFailed it quotes the plugin (untrusted).
	Detail string
	// Cause is the underlying error (a gRPC status, an Arrow error), or nil.
	Cause error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("plugin %s: %v", e.Op, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil && e.Detail == "" {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel error and the cause, so errors.Is finds either.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// maxDetail bounds the part of an error message quoted from a plugin.
const maxDetail = 512

// sanitize makes a message from the plugin safe to log: printable, one line, bounded.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && (s[cut]&0xC0) == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// classify turns an error from a gRPC call into an *Error. ctx is the caller's context: when it
// has ended, its error is the reason whatever the transport says.
func classify(ctx context.Context, op string, err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	if ctx.Err() != nil {
		return &Error{Op: op, Err: ctx.Err(), Cause: err}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Op: op, Err: ErrConnection, Detail: "the stream ended without a status", Cause: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Op: op, Err: ErrConnection, Cause: err}
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Aborted, codes.InvalidArgument:
		return &Error{Op: op, Err: ErrPluginFailed, Detail: "the plugin says: " + sanitize(msg), Cause: err}
	case codes.FailedPrecondition:
		if op == "describe" {
			return &Error{Op: op, Err: ErrProtocol, Detail: "invalid description: " + sanitize(msg), Cause: err}
		}
		return &Error{Op: op, Err: ErrInvalidOutput, Detail: "the plugin's SDK refused its output: " + sanitize(msg), Cause: err}
	case codes.ResourceExhausted:
		if op == "describe" {
			return &Error{Op: op, Err: ErrProtocol, Detail: "description too large: " + sanitize(msg), Cause: err}
		}
		return &Error{Op: op, Err: ErrOutputTooLarge, Detail: sanitize(msg), Cause: err}
	case codes.Unavailable, codes.Canceled:
		if garbled(msg) {
			return &Error{Op: op, Err: ErrProtocol, Detail: "the plugin's connection does not speak HTTP/2: " + sanitize(msg), Cause: err}
		}
		return &Error{Op: op, Err: ErrConnection, Detail: sanitize(msg), Cause: err}
	case codes.DeadlineExceeded:
		return &Error{Op: op, Err: context.DeadlineExceeded, Cause: err}
	}
	return &Error{Op: op, Err: ErrProtocol, Detail: fmt.Sprintf("status %s: %s", st.Code(), sanitize(msg)), Cause: err}
}

// garbled reports whether a transport failure message says the peer sent bytes that are not
// HTTP/2, as opposed to a closed or reset connection.
func garbled(msg string) bool {
	for _, s := range []string{"server preface", "frame too large", "http2: ", "malformed", "PROTOCOL_ERROR"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func protocolError(op, format string, args ...any) *Error {
	return &Error{Op: op, Err: ErrProtocol, Detail: fmt.Sprintf(format, args...)}
}
