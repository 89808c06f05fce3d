package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"github.com/zeebo/blake3"
)

func init() {
	exitMappers = append(exitMappers, func(err error) (int, bool) {
		switch {
		case errors.Is(err, vaultapi.ErrForbidden), errors.Is(err, vaultapi.ErrUnauthorized),
			errors.Is(err, vaultclient.ErrFingerprint):
			return exitRefused, true
		}
		return 0, false
	})
}

// machineCredentialsFile is the name of the machine credentials in the
// agent's home.
const machineCredentialsFile = "machine.json"

func (g *globals) machineCredentialsPath() (string, error) {
	home, err := g.homeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, machineCredentialsFile), nil
}

// loadMachineCredentials reads this machine's credentials; the error is
// fs.ErrNotExist when the machine is not registered.
func (g *globals) loadMachineCredentials() (*vaultwire.MachineCredentials, string, error) {
	path, err := g.machineCredentialsPath()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	var mc vaultwire.MachineCredentials
	if err := json.Unmarshal(b, &mc); err != nil || mc.Kind != vaultwire.MachineCredentialsKind {
		return nil, path, fmt.Errorf("machine credentials %s: not a Coffer machine credentials file", path)
	}
	return &mc, path, nil
}

func saveMachineCredentials(path string, mc *vaultwire.MachineCredentials) error {
	b, err := json.MarshalIndent(mc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save machine credentials: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save machine credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save machine credentials: %w", err)
	}
	return nil
}

// replaceProofContext is the BLAKE3 key-derivation context of the replace
// proof (doc/PROTOCOL.md).
const replaceProofContext = "coffer 2026-11 replace proof v1"

// replaceProof derives, from a machine's master keys, the proof that
// `register --replace` sends; the vault keeps only its SHA-256 (the
// verifier). It reveals nothing of the keys.
func replaceProof(k *format.Keys) [32]byte {
	var out [32]byte
	material := make([]byte, 0, 96)
	material = append(append(append(material, k.Data[:]...), k.ID[:]...), k.Chunker[:]...)
	blake3.DeriveKey(replaceProofContext, material, out[:])
	return out
}

// ensureVerifier stores the replace verifier at the vault server once,
// after the machine's keys are opened (or made). Failure only warns: the
// backup does not depend on it.
func (g *globals) ensureVerifier(ctx context.Context, s *session, keys *format.Keys) {
	if s.remote == nil || s.creds.VerifierSet {
		return
	}
	proof := replaceProof(keys)
	err := s.remote.SetVerifier(ctx, sha256.Sum256(proof[:]))
	if err == nil {
		s.creds.VerifierSet = true
		err = saveMachineCredentials(s.credsPath, s.creds)
	}
	if err != nil && !g.quiet {
		fmt.Fprintf(g.stderr, "warning: could not store this machine's replace verifier at the vault: %v\n", err)
	}
}
