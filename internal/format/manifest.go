package format

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Manifest is a recovery point's private description, sealed as a KindInfo
// blob: what the vault must not see (host name, paths, options).
type Manifest struct {
	Version   int         `json:"v"`
	Root      vaultapi.ID `json:"root"`  // the root tree
	Host      string      `json:"host"`  // host name when backed up
	Paths     [][]byte    `json:"paths"` // absolute source paths, as bytes
	AgentTime time.Time   `json:"agent_time"`
	Parent    string      `json:"parent,omitempty"` // point used for change detection
	Excludes  []string    `json:"excludes,omitempty"`
	Tags      []string    `json:"tags,omitempty"`
}

const manifestVersion = 1

// EncodeManifest encodes m.
func EncodeManifest(m *Manifest) ([]byte, error) {
	m.Version = manifestVersion
	return json.Marshal(m)
}

// DecodeManifest decodes a manifest.
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("manifest: version %d, this Coffer reads version %d", m.Version, manifestVersion)
	}
	if m.Root.IsZero() {
		return nil, fmt.Errorf("manifest: no root tree")
	}
	return &m, nil
}
