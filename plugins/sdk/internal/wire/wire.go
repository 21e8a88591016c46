// Package wire holds what both ends of the plugin protocol share beyond the generated messages:
// the go-plugin handshake, the size limits of the framing, and the chunking of byte streams into
// bounded messages. Call NewChunkWriter on the sending side and NewChunkReader on the receiving
// side.
package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the plugin protocol version this code speaks (sdk.ProtocolVersion).
const ProtocolVersion = 1

// PluginName is the name of the model plugin in go-plugin's plugin sets.
const PluginName = "model"

// MaxChunkBytes bounds the payload of one message: a chunk of a byte stream, or the encoded entries
// of one part of an output section.
const MaxChunkBytes = 1 << 20

// MaxMessageBytes bounds one encoded gRPC message: a chunk plus room for its framing. Both ends
// refuse larger messages.
const MaxMessageBytes = MaxChunkBytes + 64<<10

// MaxNameBytes bounds a feature, metric, ciphertext or subject name.
const MaxNameBytes = 256

// Handshake is the go-plugin handshake shared by the enclave and every plugin. The cookie only
// tells a user who runs a plugin by hand that it is not a program of its own; it is no security
// measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "INSITU_PLUGIN_COOKIE",
	MagicCookieValue: "6f1d2c0e8b7a4c3f9e5d1b2a7c6e4f80-insitu-model-plugin",
}

// ChunkWriter cuts a byte stream into chunks of at most MaxChunkBytes and hands each to send. It
// buffers one chunk, in one buffer it reuses: call Flush at the end.
type ChunkWriter struct {
	send  func([]byte) error
	size  int
	buf   []byte
	total int64
	err   error
}

// NewChunkWriter returns a ChunkWriter emitting chunks of size bytes (MaxChunkBytes when size is
// not in 1..MaxChunkBytes). A chunk is valid only until send returns: send encodes or copies it
// (a gRPC Send marshals the message before it returns) and must not retain it.
func NewChunkWriter(size int, send func([]byte) error) *ChunkWriter {
	if size <= 0 || size > MaxChunkBytes {
		size = MaxChunkBytes
	}
	return &ChunkWriter{send: send, size: size}
}

// Write buffers p, sending every full chunk. After a failed send every call returns that error.
func (w *ChunkWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, w.size)
		}
		k := min(len(p), w.size-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(w.buf) == w.size {
			if err := w.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Flush sends the buffered bytes, if any.
func (w *ChunkWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	b := w.buf
	w.buf = w.buf[:0]
	if err := w.send(b); err != nil {
		w.err = err
		return err
	}
	w.total += int64(len(b))
	return nil
}

// Total returns the number of bytes sent so far.
func (w *ChunkWriter) Total() int64 { return w.total }

// ErrChunkTooLarge: a received chunk holds more than MaxChunkBytes.
var ErrChunkTooLarge = errors.New("chunk larger than the protocol allows")

// ChunkReader reassembles a byte stream from chunks. next returns the next chunk, or io.EOF after
// the last one; any other error ends the stream with that error.
type ChunkReader struct {
	next  func() ([]byte, error)
	cur   []byte
	total int64
	err   error
}

// NewChunkReader returns a reader over the chunks next returns.
func NewChunkReader(next func() ([]byte, error)) *ChunkReader {
	return &ChunkReader{next: next}
}

// Read implements io.Reader.
func (r *ChunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		b, err := r.next()
		if err != nil {
			r.err = err
			return 0, err
		}
		if len(b) > MaxChunkBytes {
			r.err = fmt.Errorf("%w: %d bytes, limit %d", ErrChunkTooLarge, len(b), MaxChunkBytes)
			return 0, r.err
		}
		r.cur = b
		r.total += int64(len(b))
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Total returns the number of bytes received so far.
func (r *ChunkReader) Total() int64 { return r.total }

var _ io.Reader = (*ChunkReader)(nil)
var _ io.Writer = (*ChunkWriter)(nil)
