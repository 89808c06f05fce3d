// Package chunker splits byte streams into content-defined chunks with
// FastCDC (the 2020 variant: normalized chunking with two masks).
//
// Chunks are between MinSize (256 KiB) and MaxSize (4 MiB) long, about 1 MiB
// on average, except that the last chunk of a stream may be shorter. The gear
// table that drives the rolling hash is derived from a secret 32-byte seed, so
// the boundaries, and therefore the chunk sizes that an observer of the vault
// can see, depend on the machine's secret and do not fingerprint known content.
//
// Table.Cut finds one boundary in a buffer; Chunker applies it to an io.Reader
// with a reusable buffer. Both produce identical boundaries. The algorithm is
// specified in doc/FORMAT.md, "Chunking"; the golden vectors in testdata pin it.
package chunker
