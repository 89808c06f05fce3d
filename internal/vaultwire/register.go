package vaultwire

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// API is the path prefix of this protocol version.
const API = "/v1"

// Header names.
const (
	// HeaderTrailerHash carries the hex BLAKE3-256 of the pack trailer the
	// client expects (the encoding of the pack's entries, see
	// pack.AppendTrailer), so the vault checks the entries without the
	// request repeating them.
	HeaderTrailerHash = "Coffer-Trailer-Blake3"
)

// CredentialsFile is the vault credentials file an operator gives to the
// machines that may register.
type CredentialsFile struct {
	Kind        string    `json:"kind"` // "coffer-vault-credentials"
	Version     int       `json:"version"`
	URL         string    `json:"url"`         // https://host:port
	Fingerprint string    `json:"fingerprint"` // hex SHA-256 of the vault's certificate (DER)
	VaultID     string    `json:"vault_id"`
	Secret      string    `json:"secret"` // enrolment secret
	Expires     time.Time `json:"expires"`
}

// CredentialsKind is the Kind of a vault credentials file.
const CredentialsKind = "coffer-vault-credentials"

// Check validates a credentials file read from disk.
func (c *CredentialsFile) Check() error {
	if c.Kind != CredentialsKind || c.Version != 1 {
		return errors.New("not a Coffer vault credentials file (version 1)")
	}
	if !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("vault credentials: URL %q is not https://", c.URL)
	}
	if _, err := ParseFingerprint(c.Fingerprint); err != nil {
		return fmt.Errorf("vault credentials: %w", err)
	}
	if c.Secret == "" {
		return errors.New("vault credentials: no enrolment secret")
	}
	return nil
}

// MachineCredentials is what a registered machine keeps (in its home,
// mode 0600) to reach its vault.
type MachineCredentials struct {
	Kind        string `json:"kind"` // "coffer-machine-credentials"
	Version     int    `json:"version"`
	URL         string `json:"url"`
	Fingerprint string `json:"fingerprint"`
	VaultID     string `json:"vault_id"`
	MachineID   string `json:"machine_id"`
	MachineName string `json:"machine_name"`
	Token       string `json:"token"`
	// VerifierSet records that the machine's replace verifier is stored
	// at the vault, so the agent does not send it again.
	VerifierSet bool `json:"verifier_set,omitempty"`
}

// MachineCredentialsKind is the Kind of a machine credentials file.
const MachineCredentialsKind = "coffer-machine-credentials"

// RegisterRequest asks to register a machine (POST /v1/register), proving
// an enrolment secret. With Replace, the machine of that name is taken
// over: Proof must be the replace proof of its keys.
type RegisterRequest struct {
	Secret  string `json:"secret"`
	Name    string `json:"name"`
	Replace bool   `json:"replace,omitempty"`
	Proof   []byte `json:"proof,omitempty"` // 32 bytes
}

// RegisterResponse gives a newly registered machine its credentials.
type RegisterResponse struct {
	VaultID     string `json:"vault_id"`
	MachineID   string `json:"machine_id"`
	MachineName string `json:"machine_name"`
	Token       string `json:"token"`
	Replaced    bool   `json:"replaced,omitempty"`
}

// SlotsRequest asks for the key slots of a machine to replace
// (POST /v1/register/keyslots).
type SlotsRequest struct {
	Secret string `json:"secret"`
	Name   string `json:"name"`
}

// SlotsResponse carries them.
type SlotsResponse struct {
	MachineID string             `json:"machine_id"`
	Slots     []vaultapi.KeySlot `json:"slots"`
}

// VerifierRequest sets a machine's replace verifier (PUT /v1/verifier):
// SHA-256 of the replace proof.
type VerifierRequest struct {
	Verifier []byte `json:"verifier"` // 32 bytes
}

// EnrolmentRequest asks an operator endpoint for a new enrolment secret.
type EnrolmentRequest struct {
	ExpiresIn string `json:"expires_in"` // Go duration, e.g. "240h"
}

// EnrolmentResponse is a new enrolment: the secret is shown once.
type EnrolmentResponse struct {
	VaultID string    `json:"vault_id"`
	ID      string    `json:"id"`
	Secret  string    `json:"secret"`
	Expires time.Time `json:"expires"`
}

// TokenRequest asks for a new operator token.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenResponse is a new token: the secret is shown once.
type TokenResponse struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// MachineInfo describes a machine to an operator.
type MachineInfo struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	Points      int       `json:"points"`
	LastPoint   time.Time `json:"last_point,omitzero"`
	HasVerifier bool      `json:"has_verifier"`
}

// Fingerprint returns the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint parses a hex SHA-256 fingerprint; colons and case do not
// matter.
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fp, fmt.Errorf("TLS fingerprint %q is not a hex SHA-256 (64 digits)", s)
	}
	copy(fp[:], b)
	return fp, nil
}
