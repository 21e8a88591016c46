// Package psi aligns a bank's customers with the platform's subjects by private set intersection
// (ECDH-PSI over ristretto255) without either side learning the other's other subjects.
//
// The bank calls Client.Open with a Transport to the enclave (client.PSITransport over the API),
// ReadIDs on its identifier file with the session's Kind, then Session.Intersect with the valid
// identifiers; Result.Matched are its own identifiers that the platform holds and that authorize
// it, and FilterRows writes their rows of the file. The enclave keeps one Server (the session store) over a
// Source — DatasetSource, the dataset store and the authorization registry — and answers each
// message with Server.Handle; Local connects both in one process.
//
// # Protocol
//
// Both sides map an identifier x in canonical form (connectors/ident) to the group with
// H(x) = HashToElement(x, DST(kind)), hash-to-curve with a tag binding the protocol version and
// the identifier kind. Messages are binary, at most MaxMessageSize bytes, each with the version,
// the type, the session id and a sequence number (ParseMessage).
//
//  1. Open (bank): dataset, version, purpose. The enclave reads the dataset version's subjects that
//     hold a valid authorization for this bank and purpose now (consent.Registry.Authorizing),
//     pads them with random elements to Bucket(n), shuffles them, draws a fresh secret scalar b and
//     a random session id, and answers Opened: the identifier kind, the padded size, the number of
//     pages, the limits and the expiry.
//  2. Blind (bank), batch 0, 1, …: the bank draws its own fresh secret a and sends a·H(x) for its
//     distinct valid identifiers, at most MaxBatch per message. The enclave answers Blinded:
//     b·(a·H(x)), in the same order. The bank computes a⁻¹·(b·a·H(x)) = b·H(x) and keeps, for each,
//     the first 16 bytes of its encoding in a hash table.
//  3. Pull (bank), page 0, 1, …: the enclave answers Page: b·H(y) for the next MaxBatch elements of
//     its shuffled set (random elements for the padding). The bank looks each up in its table; the
//     hits are the intersection.
//  4. Close (bank): the enclave erases b and the set.
//
// Both sides run the group operations of a batch on a pool of goroutines (Options.Workers,
// Client.Workers). Memory is bounded on both sides: a message holds one batch; the bank keeps its
// identifiers and a 16-byte key per distinct identifier, the enclave the session's shuffled subject
// list, never more than one page of elements.
//
// # Who learns what
//
// The enclave learns which dataset and purpose the bank aligns with, and how many distinct
// identifiers the bank sends (exactly: a bank that wants to hide it can send more). It sees only
// a·H(x) under the bank's secret a, so it learns no identifier of the bank, and since the bank
// never sends the result back, it does not learn the intersection (it will learn the part the bank
// then labels, when the bank uploads those labels for a job).
//
// The bank learns which of its own identifiers are subjects of the dataset version that authorize
// it for the purpose at the time of the session, and the size of that authorized set rounded up to
// its bucket (at least MinBucket, then coarser than 1/16 of the size). It learns nothing about the
// platform's other subjects: the enclave's elements b·H(y) of subjects it does not hold are, under
// the decisional Diffie–Hellman assumption, indistinguishable from the random padding. A subject that
// has not authorized this bank for this purpose is never in the enclave's set, so a bank cannot
// learn that such a subject is on the platform, whatever identifiers it sends. A bank can test at
// most Options.MaxElements identifiers per session and Options.MaxSessionsPerBank sessions at a
// time.
//
// The security is against parties that follow the protocol (semi-honest); a bank that sends
// arbitrary group elements still gets only b times them under a secret that lives one session.
//
// # Sessions and failures
//
// Every session draws a fresh b (enclave) and a fresh a (bank); neither is stored on disk or reused,
// and both are zeroed when the session ends. The enclave refuses: a message that does not parse or
// carries an element that is not a canonical encoding of a non-identity element (ErrMalformed); a
// batch or page number other than the next one (ErrReplay); a session id that is not an open session
// of the calling bank — never opened, closed, expired or another bank's (ErrSession); more than
// Options.MaxElements elements or too many open sessions (ErrLimit). A malformed or replayed message
// ends its session.
//
// A dropped connection is survived within a session: the bank sends the same message again
// (Client.Retries), and the enclave answers the exact retransmission of the last message it
// answered with the same reply, computing nothing new. Anything else fails cleanly: the session ends
// (or expires after Options.TTL, 30 minutes by default) and the bank opens a new one, with new
// secrets on both sides; no partial result is kept.
package psi
