// Package exclude decides which entries a backup skips, from patterns in
// gitignore syntax given with coffer backup --exclude and --exclude-file.
//
// Paths are matched relative to the source root of the backup, slash
// separated, without a leading slash. The rules are git's (gitignore(5)):
// a pattern without a slash matches a name at any depth, a pattern with a
// leading or middle slash is anchored at the root, a trailing slash limits it
// to directories, *, ? and [...] never match a slash, "**" spans directories
// in the positions git allows, and !pattern re-includes (the last matching
// pattern decides).
//
// Differences from git: matching is case-sensitive on every platform; ? and
// bracket classes match one UTF-8 encoded character (git: one byte), and a
// byte that is not valid UTF-8 counts as one character; an unterminated
// class, an unknown [:class:] name or a dangling backslash is an error rather
// than a pattern that never matches. Match looks at the entry itself only: the
// walker never descends into an excluded directory, which gives git's rule that
// nothing inside an excluded directory can be re-included.
//
// User documentation: doc/exclude.md.
package exclude
