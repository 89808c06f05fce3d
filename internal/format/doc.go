// Package format holds the agent's data format: the machine's keys, chunk
// IDs (keyed BLAKE3-256), blob sealing (zstd, then AES-256-GCM with derived
// subkeys), trees (directory listings), recovery-point manifests and key
// slots. Everything here is specified in doc/FORMAT.md and pinned by golden
// vectors in testdata. The vault never imports this package.
package format
