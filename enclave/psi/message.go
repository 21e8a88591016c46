package psi

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"insitu/connectors/ident"
)

// Version is the protocol version; it is in every message and in the hash-to-group tag (DST).
const Version = 1

// MaxBatch is the largest number of elements in one message.
const MaxBatch = 4096

// Message sizes, in bytes: every message has a fixed header, and none is longer than
// MaxMessageSize.
const (
	HeaderSize     = 4 + 1 + 1 + 16 + 4 + 4
	MaxMessageSize = HeaderSize + MaxBatch*ElementSize
)

// magic opens every message.
var magic = [4]byte{'i', 'P', 'S', 'I'}

// maxText bounds the strings of Open and Opened.
const maxText = 64

// Type is the kind of a message. The bank sends Open, Blind, Pull and Close; the enclave answers
// each with Opened, Blinded, Page and Closed.
type Type uint8

const (
	TypeOpen    Type = 1 // bank: start a session on a dataset for a purpose
	TypeOpened  Type = 2 // enclave: the session id, the identifier kind, sizes and limits
	TypeBlind   Type = 3 // bank: batch Seq of a·H(x), in the bank's order
	TypeBlinded Type = 4 // enclave: b·(a·H(x)) for batch Seq, in the same order
	TypePull    Type = 5 // bank: ask for page Seq of the enclave's set
	TypePage    Type = 6 // enclave: page Seq of b·H(y), shuffled
	TypeClose   Type = 7 // bank: end the session
	TypeClosed  Type = 8 // enclave: the session is ended and its secret erased
)

func (t Type) String() string {
	switch t {
	case TypeOpen:
		return "open"
	case TypeOpened:
		return "opened"
	case TypeBlind:
		return "blind"
	case TypeBlinded:
		return "blinded"
	case TypePull:
		return "pull"
	case TypePage:
		return "page"
	case TypeClose:
		return "close"
	case TypeClosed:
		return "closed"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// SessionID names a session. The enclave draws it at random when it opens the session.
type SessionID [16]byte

// String returns the id in hex.
func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// Message is one protocol message. Elements holds encoded group elements (ElementSize bytes each)
// for Blind, Blinded and Page; Open and Opened are set for their types only.
type Message struct {
	Type     Type
	Session  SessionID // zero in Open only
	Seq      uint32    // batch number for Blind and Blinded, page number for Pull and Page
	Elements []byte
	Open     *Open
	Opened   *Opened
}

// Open asks for a session.
type Open struct {
	Dataset string
	Version uint32 // the dataset version; 0 means the latest
	Purpose string // a consent.Purpose
}

// Opened is the enclave's answer to Open.
type Opened struct {
	Kind           ident.Kind // the kind of the dataset's identifiers: the bank hashes its own as this kind
	DatasetVersion uint32     // the version the session uses
	// PlatformSize is the number of elements the enclave's set is streamed as: the number of
	// subjects that authorize the bank, padded up to a bucket (see Bucket).
	PlatformSize uint64
	Pages        uint32 // pages of the enclave's set, each MaxBatch elements but the last
	MaxBatch     uint32 // the largest Blind batch the enclave accepts
	MaxElements  uint64 // the most elements the bank may send in the session
	Expires      int64  // when the session ends, Unix seconds
}

// Count returns the number of elements in m.
func (m *Message) Count() int { return len(m.Elements) / ElementSize }

// MarshalBinary encodes m. It panics if m is not well-formed (programmer error): a payload that
// does not fit its type or a batch larger than MaxBatch.
func (m *Message) MarshalBinary() ([]byte, error) {
	var payload []byte
	switch m.Type {
	case TypeOpen:
		o := m.Open
		payload = appendText(payload, o.Dataset)
		payload = binary.BigEndian.AppendUint32(payload, o.Version)
		payload = appendText(payload, o.Purpose)
	case TypeOpened:
		o := m.Opened
		payload = appendText(payload, string(o.Kind))
		payload = binary.BigEndian.AppendUint32(payload, o.DatasetVersion)
		payload = binary.BigEndian.AppendUint64(payload, o.PlatformSize)
		payload = binary.BigEndian.AppendUint32(payload, o.Pages)
		payload = binary.BigEndian.AppendUint32(payload, o.MaxBatch)
		payload = binary.BigEndian.AppendUint64(payload, o.MaxElements)
		payload = binary.BigEndian.AppendUint64(payload, uint64(o.Expires))
	case TypeBlind, TypeBlinded, TypePage:
		if len(m.Elements)%ElementSize != 0 || len(m.Elements) > MaxBatch*ElementSize {
			panic(fmt.Sprintf("psi: %s message with %d bytes of elements", m.Type, len(m.Elements)))
		}
	case TypePull, TypeClose, TypeClosed:
	default:
		panic(fmt.Sprintf("psi: marshal of unknown message %s", m.Type))
	}
	n := len(payload) + len(m.Elements)
	b := make([]byte, 0, HeaderSize+n)
	b = append(b, magic[:]...)
	b = append(b, Version, byte(m.Type))
	b = append(b, m.Session[:]...)
	b = binary.BigEndian.AppendUint32(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, payload...)
	return append(b, m.Elements...), nil
}

func appendText(b []byte, s string) []byte {
	if len(s) > maxText {
		panic("psi: text field longer than 64 bytes")
	}
	return append(append(b, byte(len(s))), s...)
}

// ParseMessage decodes a message and checks its structure: magic, version, a known type, the
// length, a session id in every message but Open, the fields of Open and Opened, and whole elements
// (at most MaxBatch; at least one in Blind). It does not check that the elements are valid group
// elements: the party that uses them does. Elements aliases b.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < HeaderSize {
		return nil, malformed("%d bytes, shorter than the %d-byte header", len(b), HeaderSize)
	}
	if [4]byte(b[:4]) != magic {
		return nil, malformed("not a PSI message (bad magic)")
	}
	if b[4] != Version {
		return nil, malformed("protocol version %d, want %d", b[4], Version)
	}
	m := &Message{Type: Type(b[5]), Session: SessionID(b[6:22]), Seq: binary.BigEndian.Uint32(b[22:26])}
	n := binary.BigEndian.Uint32(b[26:30])
	p := b[HeaderSize:]
	if uint64(n) != uint64(len(p)) {
		return nil, malformed("length field %d, but %d bytes follow the header", n, len(p))
	}
	if (m.Session == SessionID{}) != (m.Type == TypeOpen) {
		if m.Type == TypeOpen {
			return nil, malformed("open message with a session id")
		}
		return nil, malformed("%s message without a session id", m.Type)
	}
	r := reader{p: p}
	switch m.Type {
	case TypeOpen:
		o := &Open{Dataset: r.text(), Version: r.u32(), Purpose: r.text()}
		m.Open = o
	case TypeOpened:
		o := &Opened{Kind: ident.Kind(r.text()), DatasetVersion: r.u32(), PlatformSize: r.u64(), Pages: r.u32(),
			MaxBatch: r.u32(), MaxElements: r.u64(), Expires: int64(r.u64())}
		if r.err == nil {
			if _, err := ident.ParseKind(string(o.Kind)); err != nil {
				return nil, malformed("opened: identifier kind %q", o.Kind)
			}
			if o.MaxBatch == 0 || o.MaxBatch > MaxBatch {
				return nil, malformed("opened: batch limit %d out of 1..%d", o.MaxBatch, MaxBatch)
			}
			if want := (o.PlatformSize + MaxBatch - 1) / MaxBatch; uint64(o.Pages) != want {
				return nil, malformed("opened: %d pages for %d elements", o.Pages, o.PlatformSize)
			}
		}
		m.Opened = o
	case TypeBlind, TypeBlinded, TypePage:
		if len(p)%ElementSize != 0 {
			return nil, malformed("%s: %d bytes is not a whole number of %d-byte elements", m.Type, len(p), ElementSize)
		}
		if len(p) > MaxBatch*ElementSize {
			return nil, malformed("%s: %d elements, more than %d", m.Type, len(p)/ElementSize, MaxBatch)
		}
		if len(p) == 0 && m.Type == TypeBlind {
			return nil, malformed("blind: no element")
		}
		m.Elements = p
		r.p = nil
	case TypePull, TypeClose, TypeClosed:
	default:
		return nil, malformed("unknown message type %d", uint8(m.Type))
	}
	if r.err != nil {
		return nil, malformed("%s: %v", m.Type, r.err)
	}
	if len(r.p) != 0 {
		return nil, malformed("%s: %d bytes after the message", m.Type, len(r.p))
	}
	return m, nil
}

// reader reads the fields of a payload, remembering the first error.
type reader struct {
	p   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.p) < n {
		r.err = fmt.Errorf("truncated")
		r.p = nil
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// text reads a length-prefixed string of printable ASCII.
func (r *reader) text() string {
	l := r.take(1)
	if l == nil {
		return ""
	}
	if int(l[0]) > maxText {
		r.err = fmt.Errorf("text field of %d bytes, more than %d", l[0], maxText)
		return ""
	}
	b := r.take(int(l[0]))
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			r.err = fmt.Errorf("text field with a byte 0x%02x outside printable ASCII", c)
			return ""
		}
	}
	return string(b)
}
