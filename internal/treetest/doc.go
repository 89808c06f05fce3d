// Package treetest builds file trees that hold every kind of entry and
// metadata Coffer must keep (hard links, sparse files, extended attributes,
// ACLs, FIFOs, device nodes, setuid bits, odd names, very deep paths), and
// compares two trees entry by entry. It is used by tests only.
package treetest
