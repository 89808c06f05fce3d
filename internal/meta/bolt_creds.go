package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// Credential buckets: "enrolments" and "tokens" map the hex hash of a
// secret to its JSON record; each machine bucket may hold "verifier".
var (
	bEnrolments = []byte("enrolments")
	bTokens     = []byte("tokens")
	kVerifier   = []byte("verifier")
)

func (s *Bolt) credBucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	if tx.Writable() {
		return tx.CreateBucketIfNotExists(name)
	}
	return tx.Bucket(name), nil
}

func (s *Bolt) putJSON(bucket []byte, key string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := s.credBucket(tx, bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), js)
	})
}

func (s *Bolt) getJSON(bucket []byte, key, what string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b, _ := s.credBucket(tx, bucket)
		var js []byte
		if b != nil {
			js = b.Get([]byte(key))
		}
		if js == nil {
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return json.Unmarshal(js, v)
	})
}

func listJSON[T any](s *Bolt, bucket []byte) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := s.credBucket(tx, bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

// updateWhere rewrites, in one transaction, every record of bucket for
// which fn returns true.
func updateWhere[T any](s *Bolt, bucket []byte, fn func(*T) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := s.credBucket(tx, bucket)
		if err != nil {
			return err
		}
		type kv struct{ k, v []byte }
		var changed []kv
		err = b.ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			if !fn(&x) {
				return nil
			}
			js, err := json.Marshal(x)
			if err != nil {
				return err
			}
			changed = append(changed, kv{bytes.Clone(k), js})
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range changed {
			if err := b.Put(c.k, c.v); err != nil {
				return err
			}
		}
		n = len(changed)
		return nil
	})
	return n, err
}

func (s *Bolt) PutEnrolment(ctx context.Context, e Enrolment) error {
	return s.putJSON(bEnrolments, e.Hash, e)
}

func (s *Bolt) EnrolmentByHash(ctx context.Context, hash string) (Enrolment, error) {
	var e Enrolment
	err := s.getJSON(bEnrolments, hash, "enrolment secret", &e)
	return e, err
}

func (s *Bolt) Enrolments(ctx context.Context) ([]Enrolment, error) {
	return listJSON[Enrolment](s, bEnrolments)
}

func (s *Bolt) RevokeEnrolment(ctx context.Context, id string) error {
	n, err := updateWhere(s, bEnrolments, func(e *Enrolment) bool {
		if e.ID != id {
			return false
		}
		e.Revoked = true
		return true
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("enrolment %q: %w", id, ErrNotFound)
	}
	return err
}

func (s *Bolt) PutToken(ctx context.Context, t Token) error {
	return s.putJSON(bTokens, t.Hash, t)
}

func (s *Bolt) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var t Token
	err := s.getJSON(bTokens, hash, "token", &t)
	return t, err
}

func (s *Bolt) Tokens(ctx context.Context) ([]Token, error) {
	return listJSON[Token](s, bTokens)
}

func (s *Bolt) RevokeToken(ctx context.Context, id string) error {
	n, err := updateWhere(s, bTokens, func(t *Token) bool {
		if t.ID != id {
			return false
		}
		t.Revoked = true
		return true
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	return err
}

func (s *Bolt) ReplaceMachineTokens(ctx context.Context, machine string, t Token) error {
	js, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := machineBucket(tx, machine); err != nil {
			return err
		}
		b, err := s.credBucket(tx, bTokens)
		if err != nil {
			return err
		}
		var old [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var x Token
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			if x.Kind == TokenMachine && x.Machine == machine && !x.Revoked {
				x.Revoked = true
				nv, _ := json.Marshal(x)
				old = append(old, bytes.Clone(k), nv)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := 0; i < len(old); i += 2 {
			if err := b.Put(old[i], old[i+1]); err != nil {
				return err
			}
		}
		return b.Put([]byte(t.Hash), js)
	})
}

func (s *Bolt) Verifier(ctx context.Context, machine string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		v = bytes.Clone(mb.Get(kVerifier))
		return nil
	})
	return v, err
}

func (s *Bolt) SetVerifier(ctx context.Context, machine string, v []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		if old := mb.Get(kVerifier); old != nil {
			if bytes.Equal(old, v) {
				return nil
			}
			return fmt.Errorf("verifier of machine %q: %w", machine, ErrExists)
		}
		return mb.Put(kVerifier, bytes.Clone(v))
	})
}

var _ Credentials = (*Bolt)(nil)

// PackSize returns the size of one of the machine's packs (ErrNotFound if
// it holds none of that name). It is an optional extra of the Bolt store;
// the vault server uses it to refuse reads past the end of a pack as bad
// requests.
func (s *Bolt) PackSize(ctx context.Context, machine, name string) (int64, error) {
	pk, err := packKey(name)
	if err != nil {
		return 0, fmt.Errorf("pack %q: %w", name, ErrNotFound)
	}
	var rec PackRecord
	err = s.db.View(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		v := mb.Bucket(bPacks).Get(pk)
		if v == nil {
			return fmt.Errorf("pack %q: %w", name, ErrNotFound)
		}
		return json.Unmarshal(v, &rec)
	})
	return rec.Size, err
}

// ForEachBlob calls fn with every blob ID the machine holds, in byte
// order. It is an optional extra of the Bolt store; the vault server
// builds the machine's blob filter with it.
func (s *Bolt) ForEachBlob(ctx context.Context, machine string, fn func(id vaultapi.ID) error) error {
	pend := s.pending.of(machine) // before the transaction: see bolt_pending.go
	return s.db.View(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		// The index and the pending entries, both in ID order, merged.
		err = mb.Bucket(bBlobs).ForEach(func(k, _ []byte) error {
			if len(k) != 32 {
				return nil
			}
			for len(pend) > 0 && bytes.Compare(pend[0].id[:], k) <= 0 {
				if pend[0].id != vaultapi.ID(k) {
					if err := fn(pend[0].id); err != nil {
						return err
					}
				}
				pend = pend[1:]
			}
			return fn(vaultapi.ID(k))
		})
		if err != nil {
			return err
		}
		for _, e := range pend {
			if err := fn(e.id); err != nil {
				return err
			}
		}
		return nil
	})
}
