// Package folderindex holds the folder index a backup keeps on the
// machine: for every folder the backup walked, the fingerprint of its
// listing, its tree ID in the vault and the chunk IDs its files reference.
// The next backup compares each folder's fresh fingerprint with the index
// and, when they are equal, reuses the tree without loading the previous
// recovery point's tree from the vault.
//
// The index is a cache. A missing, damaged or foreign file is refused with
// an error wrapping ErrIndex (or fs.ErrNotExist), and the caller then does
// without it; it is never misread. Although the file lives on the user's
// machine, its bytes are treated as untrusted: Decode never panics,
// allocates no more than in proportion to its input, and refuses every
// encoding that is not exactly canonical. The file is authenticated by a
// MAC the caller supplies, and bound to one recovery point and to a scope
// (a hash of the backup's settings), both made by the caller.
//
// # File format
//
// All integers little-endian; uvarints are Go's binary.Uvarint and must be
// minimal (no trailing 0x00 continuation byte after the first).
//
//	magic   "CFIX" (4 bytes)
//	version 0x01 (1 byte)
//	point   32 bytes
//	scope   32 bytes
//	count   uvarint: number of entries
//	entries, in strictly increasing key order (bytewise):
//	    key    16 bytes
//	    fp     16 bytes
//	    tree   32 bytes
//	    n      uvarint: number of chunk IDs
//	    chunks n × 32 bytes
//	mac     32 bytes = MAC(every byte before it)
//
// Decode refuses a file that is shorter than the fixed parts, has another
// magic or an unknown version, fails its MAC (checked before anything after
// the version is read), claims more entries or chunk IDs than the bytes
// left could hold, has keys out of strictly increasing order, has bytes
// between the last entry and the MAC, or holds a non-minimal uvarint.
package folderindex
