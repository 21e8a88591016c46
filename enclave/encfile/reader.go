package encfile

import (
	"bufio"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader decrypts an encrypted file, authenticating every block before returning its plaintext.
type Reader struct {
	r         *bufio.Reader
	aead      cipher.AEAD
	prefix    [prefixSize]byte
	hdrHash   [32]byte
	identity  string
	blockSize int
	index     uint64
	chunk     []byte
	pbuf      []byte // plaintext buffer, block size
	plain     []byte // decrypted, not yet returned
	done      bool   // the final block has been read
	err       error
}

// NewReader reads and authenticates the header of an encrypted file and returns a Reader of its
// plaintext. identity is what the caller expects the file to be; a different authenticated identity
// is ErrWrongFile.
func NewReader(r io.Reader, kek []byte, identity string) (*Reader, error) {
	fail := func(err error) (*Reader, error) { return nil, &Error{Identity: identity, Block: -1, Err: err} }
	if len(kek) != keySize {
		return nil, fmt.Errorf("encfile: KEK of %d bytes, want %d", len(kek), keySize)
	}
	fixed := make([]byte, len(Magic)+4+fileIDSize+prefixSize+2)
	if _, err := io.ReadFull(r, fixed); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(fmt.Errorf("%w: the file ends inside its header", ErrTruncated))
		}
		return fail(err)
	}
	if string(fixed[:len(Magic)]) != Magic {
		return fail(fmt.Errorf("%w: not an insitu encrypted file (bad magic)", ErrCorrupt))
	}
	p := fixed[len(Magic):]
	if p[0] != version {
		return fail(fmt.Errorf("%w: format version %d, this insitu reads version %d", ErrCorrupt, p[0], version))
	}
	if p[1] != suite {
		return fail(fmt.Errorf("%w: unknown cipher suite %d", ErrCorrupt, p[1]))
	}
	lb := int(p[2])
	if lb < MinLog2Block || lb > MaxLog2Block || p[3] != 0 {
		return fail(fmt.Errorf("%w: bad block size or reserved byte", ErrCorrupt))
	}
	var prefix [prefixSize]byte
	copy(prefix[:], p[4+fileIDSize:])
	idLen := int(binary.BigEndian.Uint16(p[4+fileIDSize+prefixSize:]))
	if idLen > maxIdentity {
		return fail(fmt.Errorf("%w: identity of %d bytes", ErrCorrupt, idLen))
	}
	rest := make([]byte, idLen+nonceSize+wrappedSize)
	if _, err := io.ReadFull(r, rest); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(fmt.Errorf("%w: the file ends inside its header", ErrTruncated))
		}
		return fail(err)
	}
	hdr := append(fixed, rest...)
	wrapAAD := hdr[:len(fixed)+idLen]
	gotIdentity := string(rest[:idLen])
	wrapNonce := rest[idLen : idLen+nonceSize]
	wrapped := rest[idLen+nonceSize:]
	kekAEAD, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	dataKey, err := kekAEAD.Open(nil, wrapNonce, wrapped, wrapAAD)
	if err != nil {
		return fail(fmt.Errorf("%w: the master key is not the one the file was written with, or the header was altered", ErrKey))
	}
	if gotIdentity != identity {
		return fail(fmt.Errorf("%w: it is %q (files swapped or moved?)", ErrWrongFile, gotIdentity))
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	bs := 1 << lb
	return &Reader{
		r:         bufio.NewReaderSize(r, bs+tagSize+1),
		aead:      aead,
		prefix:    prefix,
		hdrHash:   sha256.Sum256(hdr),
		identity:  identity,
		blockSize: bs,
		chunk:     make([]byte, bs+tagSize),
		pbuf:      make([]byte, 0, bs),
	}, nil
}

// Identity returns the file's authenticated identity.
func (r *Reader) Identity() string { return r.identity }

// Blocks returns the number of blocks decrypted so far.
func (r *Reader) Blocks() int64 { return int64(r.index) }

// Read returns authenticated plaintext. It returns io.EOF only after the final block authenticated.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

func (r *Reader) fail(err error) error {
	return &Error{Identity: r.identity, Block: int64(r.index), Err: err}
}

func (r *Reader) next() error {
	if r.index >= maxBlocks {
		return r.fail(fmt.Errorf("%w: more blocks than the counter allows", ErrCorrupt))
	}
	n, err := io.ReadFull(r.r, r.chunk)
	switch {
	case errors.Is(err, io.EOF):
		return r.fail(fmt.Errorf("%w: the final block is missing", ErrTruncated))
	case errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		return r.fail(err)
	}
	if n < tagSize {
		return r.fail(fmt.Errorf("%w: the last block has %d bytes, less than a tag", ErrTruncated, n))
	}
	last := n < len(r.chunk)
	if !last {
		if _, perr := r.r.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			return r.fail(perr)
		}
	}
	ct := r.chunk[:n]
	aad := blockAAD(r.hdrHash, r.index)
	plain, err := r.aead.Open(r.pbuf[:0], blockNonce(r.prefix, r.index, last), ct, aad)
	if err != nil {
		// Tell a cut file and appended data apart from a tampered block.
		if _, err2 := r.aead.Open(r.pbuf[:0], blockNonce(r.prefix, r.index, !last), ct, aad); err2 == nil {
			if last {
				return r.fail(fmt.Errorf("%w: the file ends after this block, which is not the final one", ErrTruncated))
			}
			return r.fail(fmt.Errorf("%w: data follows the final block", ErrCorrupt))
		}
		return r.fail(fmt.Errorf("%w: authentication failed", ErrCorrupt))
	}
	if last && len(plain) == 0 && r.index > 0 {
		return r.fail(fmt.Errorf("%w: empty final block after data", ErrCorrupt))
	}
	r.plain = plain
	r.index++
	r.done = last
	return nil
}

// Check reads the whole file from r, authenticating every block, and returns the plaintext size and
// the number of blocks. It is what a verifier calls when it needs no plaintext.
func Check(r io.Reader, kek []byte, identity string) (plaintext int64, blocks int64, err error) {
	er, err := NewReader(r, kek, identity)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, er)
	return n, er.Blocks(), err
}

var _ io.Reader = (*Reader)(nil)
var _ io.WriteCloser = (*Writer)(nil)
