// Package encfile is the enclave's format for files encrypted at rest: AES-256-GCM in the STREAM
// construction (as in age) under a random per-file data key, which is itself wrapped with AES-256-GCM
// under a key-encryption key (KEK) derived from the master key.
//
// Call NewWriter to encrypt, writing the plaintext through it and closing it; call NewReader with the
// same KEK and the file's expected identity to decrypt. Every error a Reader returns wraps ErrCorrupt,
// ErrTruncated, ErrWrongFile or ErrKey, so that a steward learns what went wrong.
//
// # Format, version 1
//
// All integers are big-endian.
//
//	header:
//	  magic          8 bytes   "\x89INSENC\n"
//	  version        1 byte    1
//	  suite          1 byte    1 = AES-256-GCM STREAM, AES-256-GCM key wrap
//	  log2 block     1 byte    log2 of the plaintext block size, 16..20 (64 KiB..1 MiB)
//	  reserved       1 byte    0
//	  file id       16 bytes   random
//	  nonce prefix   7 bytes   random
//	  identity len   2 bytes   n ≤ 1024
//	  identity       n bytes   UTF-8, what the file is, e.g. "dataset credit v3 part tax.arrows"
//	  wrap nonce    12 bytes   random
//	  wrapped key   48 bytes   AES-256-GCM(KEK, wrap nonce, data key; AAD = header bytes before wrap nonce)
//	blocks: one or more, each AES-256-GCM(data key, nonce, plaintext block; AAD)
//	  nonce = nonce prefix ‖ block index (4 bytes) ‖ last flag (1 byte: 1 for the final block, else 0)
//	  AAD   = SHA-256(header) ‖ block index (8 bytes)
//
// Every block but the last holds exactly one full plaintext block; the last holds 1 to a full block,
// or 0 bytes only when the whole plaintext is empty. Because the nonce carries the block index and the
// last flag, and the AAD the hash of the header (which holds the random file id), reordered,
// dropped, duplicated or truncated blocks and blocks moved between files all fail authentication; a
// file cut at a block boundary lacks a final block and fails with ErrTruncated. The identity is
// authenticated and checked against the one the reader expects, so a file swapped for another file
// under the same key fails with ErrWrongFile.
package encfile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic starts every encrypted file.
const Magic = "\x89INSENC\n"

const (
	version     = 1
	suite       = 1
	fileIDSize  = 16
	prefixSize  = 7
	maxIdentity = 1024
	keySize     = 32
	tagSize     = 16
	nonceSize   = 12
	wrappedSize = keySize + tagSize
	// DefaultLog2Block is the default block size: 256 KiB.
	DefaultLog2Block = 18
	// MinLog2Block and MaxLog2Block bound the block size: 64 KiB to 1 MiB.
	MinLog2Block = 16
	MaxLog2Block = 20
	// maxBlocks is the number of blocks the 4-byte index allows.
	maxBlocks = 1 << 32
)

var (
	// ErrCorrupt is wrapped when a header or block fails to parse or authenticate.
	ErrCorrupt = errors.New("encrypted file corrupt or tampered with")
	// ErrTruncated is wrapped when a file ends before its final block.
	ErrTruncated = errors.New("encrypted file truncated")
	// ErrWrongFile is wrapped when a file's authenticated identity is not the one expected.
	ErrWrongFile = errors.New("encrypted file is another file")
	// ErrKey is wrapped when the data key cannot be unwrapped: the KEK (master key) is wrong or the
	// header was altered.
	ErrKey = errors.New("cannot unwrap the file's data key")
)

// Error locates a failure in an encrypted file: which file (its expected identity) and which block.
type Error struct {
	Identity string
	Block    int64 // -1 for the header
	Err      error
}

func (e *Error) Error() string {
	if e.Block < 0 {
		return fmt.Sprintf("encrypted file %q: header: %v", e.Identity, e.Err)
	}
	return fmt.Sprintf("encrypted file %q: block %d: %v", e.Identity, e.Block, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Options tune a Writer. The zero value is the default.
type Options struct {
	// Log2Block is log2 of the plaintext block size, MinLog2Block..MaxLog2Block; 0 means
	// DefaultLog2Block.
	Log2Block int
	// Rand is the source of the data key, file id and nonces; nil means crypto/rand.
	Rand io.Reader
}

// Writer encrypts what is written to it. Close writes the final block; a file without it is
// unreadable, which is what makes truncation detectable.
type Writer struct {
	w         io.Writer
	aead      cipher.AEAD
	prefix    [prefixSize]byte
	hdrHash   [32]byte
	identity  string
	buf       []byte // plaintext of the current block, len ≤ block size
	blockSize int
	index     uint64
	out       []byte
	err       error
	closed    bool
}

// NewWriter writes the header of a new encrypted file to w and returns a Writer for its plaintext.
// kek is the 32-byte key-encryption key; identity says what the file is and must be given again to
// NewReader.
func NewWriter(w io.Writer, kek []byte, identity string, opts Options) (*Writer, error) {
	if len(kek) != keySize {
		return nil, fmt.Errorf("encfile: KEK of %d bytes, want %d", len(kek), keySize)
	}
	if len(identity) > maxIdentity {
		return nil, fmt.Errorf("encfile: identity of %d bytes, at most %d", len(identity), maxIdentity)
	}
	lb := opts.Log2Block
	if lb == 0 {
		lb = DefaultLog2Block
	}
	if lb < MinLog2Block || lb > MaxLog2Block {
		return nil, fmt.Errorf("encfile: log2 block size %d outside %d..%d", lb, MinLog2Block, MaxLog2Block)
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var secret [keySize + fileIDSize + prefixSize + nonceSize]byte
	if _, err := io.ReadFull(rnd, secret[:]); err != nil {
		return nil, fmt.Errorf("encfile: random: %w", err)
	}
	dataKey := secret[:keySize]
	fileID := secret[keySize : keySize+fileIDSize]
	prefix := secret[keySize+fileIDSize : keySize+fileIDSize+prefixSize]
	wrapNonce := secret[keySize+fileIDSize+prefixSize:]

	hdr := make([]byte, 0, 64+len(identity)+nonceSize+wrappedSize)
	hdr = append(hdr, Magic...)
	hdr = append(hdr, version, suite, byte(lb), 0)
	hdr = append(hdr, fileID...)
	hdr = append(hdr, prefix...)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(identity)))
	hdr = append(hdr, identity...)
	wrapAAD := bytes.Clone(hdr)
	hdr = append(hdr, wrapNonce...)
	kekAEAD, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	hdr = kekAEAD.Seal(hdr, wrapNonce, dataKey, wrapAAD)
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	ew := &Writer{
		w:         w,
		aead:      aead,
		hdrHash:   sha256.Sum256(hdr),
		identity:  identity,
		blockSize: 1 << lb,
	}
	copy(ew.prefix[:], prefix)
	ew.buf = make([]byte, 0, ew.blockSize)
	ew.out = make([]byte, 0, ew.blockSize+tagSize)
	return ew, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encfile: %w", err)
	}
	return cipher.NewGCM(b)
}

func blockNonce(prefix [prefixSize]byte, index uint64, last bool) []byte {
	var n [nonceSize]byte
	copy(n[:], prefix[:])
	binary.BigEndian.PutUint32(n[prefixSize:], uint32(index))
	if last {
		n[nonceSize-1] = 1
	}
	return n[:]
}

func blockAAD(hdrHash [32]byte, index uint64) []byte {
	a := make([]byte, 0, 40)
	a = append(a, hdrHash[:]...)
	return binary.BigEndian.AppendUint64(a, index)
}

// Write encrypts p, writing each block as it fills.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("encfile: write after close")
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == w.blockSize {
			// A full block is only flushed once more data arrives, so that the final block is never
			// empty unless the whole file is.
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
		k := min(w.blockSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
	}
	return n, nil
}

func (w *Writer) flush(last bool) error {
	if w.index >= maxBlocks {
		w.err = errors.New("encfile: file too large for the block counter")
		return w.err
	}
	w.out = w.aead.Seal(w.out[:0], blockNonce(w.prefix, w.index, last), w.buf, blockAAD(w.hdrHash, w.index))
	if _, err := w.w.Write(w.out); err != nil {
		w.err = err
		return err
	}
	w.index++
	w.buf = w.buf[:0]
	return nil
}

// Close writes the final block. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	return w.flush(true)
}

// Blocks returns the number of blocks written so far.
func (w *Writer) Blocks() int64 { return int64(w.index) }
