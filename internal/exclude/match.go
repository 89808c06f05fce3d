package exclude

import (
	"strings"
	"unicode/utf8"
)

// Matcher decides which paths a backup skips.
// It is safe for concurrent use.
type Matcher struct {
	pats []*pattern
	// Patterns are sorted into kinds that can be checked cheaply; each list
	// holds pattern indexes in increasing order, since the last match wins.
	baseLit map[string][]int // name patterns without wildcards, by name
	ext     map[string][]int // name patterns "*.ext" (one dot), by ".ext"
	suffix  []suffixPat      // other name patterns "*literal"
	pathLit map[string][]int // anchored patterns without wildcards, by path
	general []int            // the rest

	// Lengths of the keys of pathLit, to skip the lookup for most paths.
	pathMin, pathMax int
}

type suffixPat struct {
	idx int
	s   string
}

// Compile parses patterns in gitignore syntax (one pattern per element; blank lines and
// lines starting with # ignored; \# and \! escapes; trailing unescaped spaces trimmed).
// It returns an error naming the bad pattern and why (e.g. an unterminated [ class).
// The error is a *PatternError.
func Compile(patterns []string) (*Matcher, error) {
	return compile(patterns, true)
}

// compile is Compile; with fast false every pattern goes to the general list
// (tests compare the two).
func compile(patterns []string, fast bool) (*Matcher, error) {
	m := &Matcher{baseLit: map[string][]int{}, pathLit: map[string][]int{}, ext: map[string][]int{}}
	for _, line := range patterns {
		p, err := parse(line)
		if err != nil {
			return nil, err
		}
		if p == nil {
			continue
		}
		idx := len(m.pats)
		m.pats = append(m.pats, p)
		if !fast {
			m.general = append(m.general, idx) // no filters either
			continue
		}
		if p.anchored && len(p.segs) == 2 && p.segs[0].starStar && !p.segs[1].starStar {
			// "**/x" matches x at any depth, like the name pattern "x".
			p.anchored, p.segs = false, p.segs[1:]
		}
		if !p.anchored {
			if s, ok := p.segs[0].literal(); ok {
				m.baseLit[s] = append(m.baseLit[s], idx)
			} else if s, ok := suffixOf(&p.segs[0]); ok && s[0] == '.' && strings.LastIndexByte(s, '.') == 0 {
				m.ext[s] = append(m.ext[s], idx)
			} else if ok {
				m.suffix = append(m.suffix, suffixPat{idx, s})
			} else {
				m.general = append(m.general, idx)
			}
		} else if path, ok := literalPath(p.segs); ok {
			m.pathLit[path] = append(m.pathLit[path], idx)
			if len(m.pathLit) == 1 || len(path) < m.pathMin {
				m.pathMin = len(path)
			}
			m.pathMax = max(m.pathMax, len(path))
		} else {
			m.general = append(m.general, idx)
		}
	}
	for _, i := range m.general {
		m.pats[i].setFilters()
	}
	return m, nil
}

// setFilters records the literal text that any name or path the pattern
// matches must begin or end with.
func (p *pattern) setFilters() {
	// The last segment always matches the name, unless it is "**".
	last := &p.segs[len(p.segs)-1]
	if !last.starStar && len(last.toks) > 0 {
		if t := last.toks[0]; t.kind == tLit {
			p.namePrefix = t.lit
		}
		if t := last.toks[len(last.toks)-1]; t.kind == tLit && utf8.RuneStart(t.lit[0]) {
			p.nameSuffix = t.lit
		}
	}
	if p.anchored && len(p.segs) > 1 {
		if s, ok := p.segs[0].literal(); ok {
			p.rootDir = s
		}
	}
}

// suffixOf reports whether a segment is "*literal", with a literal that starts
// a character, so that a byte suffix test equals matching.
func suffixOf(s *segment) (string, bool) {
	if len(s.toks) != 2 || s.toks[0].kind != tStar || s.toks[1].kind != tLit {
		return "", false
	}
	lit := s.toks[1].lit
	if !utf8.RuneStart(lit[0]) {
		return "", false
	}
	return lit, true
}

// literalPath reports whether all segments are plain strings, joined.
func literalPath(segs []segment) (string, bool) {
	parts := make([]string, len(segs))
	for i := range segs {
		s, ok := segs[i].literal()
		if !ok || s == "" {
			return "", false
		}
		parts[i] = s
	}
	return strings.Join(parts, "/"), true
}

// Match reports whether the entry at rel (slash-separated path relative to the backup
// source root, no leading slash, e.g. "src/a/b.o") is excluded. isDir tells whether it is a directory.
//
// Only the entry's own name and path are considered: a caller that walks a
// tree must not descend into directories for which Match returns true.
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m == nil || len(m.pats) == 0 || rel == "" {
		return false
	}
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	best := -1
	if len(m.baseLit) > 0 {
		best = m.lastOf(m.baseLit[base], best, isDir)
	}
	if len(m.ext) > 0 {
		if i := strings.LastIndexByte(base, '.'); i >= 0 {
			best = m.lastOf(m.ext[base[i:]], best, isDir)
		}
	}
	if len(m.pathLit) > 0 && len(rel) >= m.pathMin && len(rel) <= m.pathMax {
		best = m.lastOf(m.pathLit[rel], best, isDir)
	}
	for j := len(m.suffix) - 1; j >= 0 && m.suffix[j].idx > best; j-- {
		sp := &m.suffix[j]
		if (isDir || !m.pats[sp.idx].dirOnly) && strings.HasSuffix(base, sp.s) {
			best = sp.idx
			break
		}
	}
	for j := len(m.general) - 1; j >= 0 && m.general[j] > best; j-- {
		p := m.pats[m.general[j]]
		if p.dirOnly && !isDir {
			continue
		}
		if p.matches(rel, base) {
			best = m.general[j]
			break
		}
	}
	return best >= 0 && !m.pats[best].negate
}

// matches reports whether a general pattern matches, after cheap tests of
// the literal parts it begins or ends with.
func (p *pattern) matches(rel, base string) bool {
	if !strings.HasPrefix(base, p.namePrefix) || !strings.HasSuffix(base, p.nameSuffix) {
		return false
	}
	if !p.anchored {
		return matchSegment(p.segs[0].toks, base)
	}
	if p.rootDir != "" && !(strings.HasPrefix(rel, p.rootDir) && (len(rel) == len(p.rootDir) || rel[len(p.rootDir)] == '/')) {
		return false
	}
	return matchPath(p.segs, rel)
}

// lastOf returns the greatest index in idxs above best whose pattern applies
// to the entry's type, or best.
func (m *Matcher) lastOf(idxs []int, best int, isDir bool) int {
	for j := len(idxs) - 1; j >= 0 && idxs[j] > best; j-- {
		if isDir || !m.pats[idxs[j]].dirOnly {
			return idxs[j]
		}
	}
	return best
}

// matchSegment matches one name against a segment's tokens. It backtracks
// only to the last '*' seen, which is enough for patterns whose only variable
// width token is '*', and keeps matching O(len(toks)*len(s)).
func matchSegment(toks []token, s string) bool {
	pi, si := 0, 0
	starPi, starSi := -1, 0
	for {
		if pi < len(toks) {
			t := &toks[pi]
			switch t.kind {
			case tStar:
				starPi, starSi = pi+1, si
				pi++
				continue
			case tLit:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					pi++
					continue
				}
			case tAny:
				if si < len(s) {
					_, w := decode(s[si:])
					si += w
					pi++
					continue
				}
			case tClass:
				if si < len(s) {
					if r, w := decode(s[si:]); t.cls.match(r) {
						si += w
						pi++
						continue
					}
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last '*' take one more character, if any.
		if starPi < 0 || starSi >= len(s) {
			return false
		}
		_, w := decode(s[starSi:])
		starSi += w
		pi, si = starPi, starSi
	}
}

// matchPath matches a slash-separated path against segments, "**" standing
// for any number of whole path segments. Like matchSegment, it backtracks
// only to the last "**". pos is where the next path segment starts;
// len(rel)+1 means none is left.
func matchPath(segs []segment, rel string) bool {
	pi, pos := 0, 0
	starPi, starPos := -1, 0
	next := func(from int) int { // end of the segment starting at from
		if i := strings.IndexByte(rel[from:], '/'); i >= 0 {
			return from + i
		}
		return len(rel)
	}
	for {
		if pi < len(segs) {
			sg := &segs[pi]
			if sg.starStar {
				starPi, starPos = pi+1, pos
				pi++
				continue
			}
			if pos <= len(rel) {
				end := next(pos)
				if matchSegment(sg.toks, rel[pos:end]) {
					pos = end + 1
					pi++
					continue
				}
			}
		} else if pos > len(rel) {
			return true
		}
		if starPi < 0 || starPos > len(rel) {
			return false
		}
		starPos = next(starPos) + 1
		pi, pos = starPi, starPos
	}
}
