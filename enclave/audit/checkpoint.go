package audit

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"time"

	"insitu/enclave/keys"
)

// CheckpointContext is the ML-DSA context string of checkpoint signatures.
const CheckpointContext = "insitu audit checkpoint v1"

// checkpointDomain starts the signed message of a checkpoint.
const checkpointDomain = "insitu-audit-checkpoint-v1\x00"

// Checkpoint is the enclave's signature over the chain's head at a moment.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      Digest    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"`
}

// Head returns the head the checkpoint signs.
func (c *Checkpoint) Head() Head { return Head{Seq: c.Seq, Hash: c.Hash} }

// CheckpointMessage is what a checkpoint signs: the domain string "insitu-audit-checkpoint-v1" and a
// zero byte, seq as an 8-byte big-endian integer, the 32-byte hash and the time as 8-byte big-endian
// nanoseconds since the Unix epoch.
func CheckpointMessage(seq int64, hash Digest, t time.Time) []byte {
	b := append([]byte(checkpointDomain), make([]byte, 0, 48)...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = append(b, hash[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
}

// Verify reports whether the checkpoint carries enclave's valid signature.
func (c *Checkpoint) Verify(enclave keys.PublicIdentity) bool {
	return enclave.Verify(CheckpointMessage(c.Seq, c.Hash, c.Time), CheckpointContext, c.Signature)
}

// Checkpoint signs the current head, unless a checkpoint of it exists already, and returns the
// checkpoint of the head. It fails with ErrEmpty on an empty log.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		head, err := headTx(ctx, tx)
		if err != nil {
			return err
		}
		if head.Seq == 0 {
			return ErrEmpty
		}
		cp, err = l.checkpointTx(ctx, tx, head)
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return cp, nil
}

// CheckpointTx is Checkpoint inside tx, a write transaction on the log's database: the checkpoint
// of the head as tx sees it commits or rolls back with the records appended in tx.
func (l *Log) CheckpointTx(ctx context.Context, tx *sql.Tx) (Checkpoint, error) {
	head, err := headTx(ctx, tx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if head.Seq == 0 {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", ErrEmpty)
	}
	cp, err := l.checkpointTx(ctx, tx, head)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return cp, nil
}

func (l *Log) checkpointTx(ctx context.Context, tx *sql.Tx, head Head) (Checkpoint, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, hash, time_ns, signature FROM audit_checkpoints WHERE seq = ?`, head.Seq)
	if err != nil {
		return Checkpoint{}, err
	}
	cps, err := scanCheckpoints(rows)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cps) == 1 {
		if cps[0].Hash != head.Hash {
			return Checkpoint{}, fmt.Errorf("checkpoint %d does not match record %d; run insitu audit verify", head.Seq, head.Seq)
		}
		return cps[0], nil
	}
	cp := Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: l.now().UTC()}
	if cp.Signature, err = l.signer.Sign(CheckpointMessage(cp.Seq, cp.Hash, cp.Time), CheckpointContext); err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, time_ns, signature) VALUES (?, ?, ?, ?)`,
		cp.Seq, cp.Hash[:], cp.Time.UnixNano(), cp.Signature)
	if err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// LatestCheckpoint returns the checkpoint with the highest seq; ok is false when there is none.
func (l *Log) LatestCheckpoint(ctx context.Context) (cp Checkpoint, ok bool, err error) {
	err = l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, hash, time_ns, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`)
		if err != nil {
			return err
		}
		cps, err := scanCheckpoints(rows)
		if len(cps) == 1 {
			cp, ok = cps[0], true
		}
		return err
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	return cp, ok, nil
}

// scanCheckpoints reads checkpoint rows and closes them. A row whose hash is not 32 bytes is
// returned with a nil Signature so that it verifies as invalid.
func scanCheckpoints(rows *sql.Rows) ([]Checkpoint, error) {
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var cp Checkpoint
		var hash []byte
		var ns int64
		if err := rows.Scan(&cp.Seq, &hash, &ns, &cp.Signature); err != nil {
			return nil, err
		}
		if len(hash) != len(cp.Hash) {
			cp.Signature = nil
		}
		copy(cp.Hash[:], hash)
		cp.Time = time.Unix(0, ns).UTC()
		out = append(out, cp)
	}
	return out, rows.Err()
}
