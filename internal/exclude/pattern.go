package exclude

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// PatternError reports a pattern that cannot be compiled.
type PatternError struct {
	Pattern string // the pattern as given
	Reason  string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("exclude: pattern %q: %s", e.Pattern, e.Reason)
}

// pattern is one compiled line.
type pattern struct {
	text     string // as given, for debugging
	negate   bool   // !pattern: re-include
	dirOnly  bool   // trailing slash: directories only
	anchored bool   // contains a slash: matched against the whole path
	segs     []segment

	// Filters of general patterns (see setFilters): the name must begin with
	// namePrefix and end with nameSuffix, and the path must lie in rootDir.
	namePrefix, nameSuffix, rootDir string
}

// segment is the part of a pattern between slashes. A "**" segment matches any
// number of whole path segments, including none.
type segment struct {
	starStar bool
	toks     []token
}

type tokKind uint8

const (
	tLit   tokKind = iota // literal bytes
	tAny                  // ?: one character
	tStar                 // *: any run of characters
	tClass                // [...]: one character of a set
)

type token struct {
	kind tokKind
	lit  string
	cls  *class
}

// literal reports whether the segment is a plain string, and which.
func (s *segment) literal() (string, bool) {
	if s.starStar {
		return "", false
	}
	switch {
	case len(s.toks) == 0:
		return "", true
	case len(s.toks) == 1 && s.toks[0].kind == tLit:
		return s.toks[0].lit, true
	}
	return "", false
}

// parse compiles one line. It returns nil, nil for blank lines and comments.
func parse(line string) (*pattern, error) {
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	bad := func(why string) error { return &PatternError{Pattern: line, Reason: why} }
	p := &pattern{text: line}
	s := trimTrailingSpaces(line)
	if s == "" {
		return nil, nil
	}
	if s[0] == '!' {
		p.negate = true
		s = s[1:]
	}
	if strings.HasSuffix(s, "/") && !strings.HasSuffix(s, `\/`) {
		p.dirOnly = true
		s = s[:len(s)-1]
	}
	// As in git, any slash left (escaped or inside brackets too) anchors the
	// pattern; a leading one only says so.
	p.anchored = strings.IndexByte(s, '/') >= 0
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return nil, bad("empty pattern")
	}
	segs, err := tokenize(s)
	if err != nil {
		return nil, bad(err.Error())
	}
	if !p.anchored {
		// One segment, matched against the name: "**" is just "*" there.
		if segs[0].starStar {
			segs[0] = segment{toks: []token{{kind: tStar}}}
		}
	} else if n := len(segs); segs[n-1].starStar {
		// A trailing "/**" matches everything inside, but not the directory
		// itself: it stands for one or more segments.
		segs = append(segs[:n-1], segment{toks: []token{{kind: tStar}}}, segment{starStar: true})
	}
	p.segs = segs
	return p, nil
}

// trimTrailingSpaces removes trailing spaces unless escaped with a backslash.
func trimTrailingSpaces(s string) string {
	end := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			continue
		case '\\':
			i++ // the escaped byte, even a space, is kept
		}
		end = min(i+1, len(s))
	}
	return s[:end]
}

// tokenize splits a pattern (leading slash removed) into segments.
func tokenize(s string) ([]segment, error) {
	var segs []segment
	var cur segment
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			cur.toks = append(cur.toks, token{kind: tLit, lit: string(lit)})
			lit = lit[:0]
		}
	}
	endSeg := func() {
		flush()
		segs = append(segs, cur)
		cur = segment{}
	}
	atSegStart := true
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '/':
			endSeg()
			i += 2
			atSegStart = true
			continue
		case c == '/':
			endSeg()
			i++
			atSegStart = true
			continue
		case c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("trailing backslash escapes nothing")
			}
			lit = append(lit, s[i+1])
			i += 2
		case c == '*':
			j := i
			for j < len(s) && s[j] == '*' {
				j++
			}
			rest := s[j:]
			if j-i >= 2 && atSegStart && (rest == "" || rest[0] == '/' || strings.HasPrefix(rest, `\/`)) {
				cur.starStar = true
			} else {
				flush()
				if n := len(cur.toks); n == 0 || cur.toks[n-1].kind != tStar {
					cur.toks = append(cur.toks, token{kind: tStar})
				}
			}
			i = j
		case c == '?':
			flush()
			cur.toks = append(cur.toks, token{kind: tAny})
			i++
		case c == '[':
			cl, n, err := parseClass(s[i:])
			if err != nil {
				return nil, err
			}
			flush()
			cur.toks = append(cur.toks, token{kind: tClass, cls: cl})
			i += n
		default:
			lit = append(lit, c)
			i++
		}
		atSegStart = false
	}
	endSeg()
	return segs, nil
}

// class is a bracket expression. Characters are runes; a byte that is not
// valid UTF-8 is represented as invalidBase plus its value, above all runes.
type class struct {
	negate bool
	ascii  [2]uint64 // members below utf8.RuneSelf
	ranges []runeRange
}

type runeRange struct{ lo, hi rune }

const invalidBase = utf8.MaxRune + 1

// decode returns the character at the start of s and its length in bytes.
func decode(s string) (rune, int) {
	c := s[0]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	r, w := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && w == 1 {
		return invalidBase + rune(c), 1
	}
	return r, w
}

func (c *class) add(lo, hi rune) {
	for ; lo <= hi && lo < utf8.RuneSelf; lo++ {
		c.ascii[lo>>6] |= 1 << (lo & 63)
	}
	if lo <= hi {
		c.ranges = append(c.ranges, runeRange{lo, hi})
	}
}

func (c *class) match(r rune) bool {
	in := false
	if r < utf8.RuneSelf {
		in = c.ascii[r>>6]&(1<<(r&63)) != 0
	} else {
		for _, rg := range c.ranges {
			if rg.lo <= r && r <= rg.hi {
				in = true
				break
			}
		}
	}
	return in != c.negate
}

// posixClasses are the [:name:] sets git's wildmatch knows, over ASCII.
var posixClasses = map[string]func(byte) bool{
	"alnum":  func(b byte) bool { return isAlpha(b) || isDigit(b) },
	"alpha":  isAlpha,
	"blank":  func(b byte) bool { return b == ' ' || b == '\t' },
	"cntrl":  func(b byte) bool { return b < 32 || b == 127 },
	"digit":  isDigit,
	"graph":  func(b byte) bool { return b > 32 && b < 127 },
	"lower":  func(b byte) bool { return b >= 'a' && b <= 'z' },
	"print":  func(b byte) bool { return b >= 32 && b < 127 },
	"punct":  func(b byte) bool { return b > 32 && b < 127 && !isAlpha(b) && !isDigit(b) },
	"space":  func(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') },
	"upper":  func(b byte) bool { return b >= 'A' && b <= 'Z' },
	"xdigit": func(b byte) bool { return isDigit(b) || (b|0x20 >= 'a' && b|0x20 <= 'f') },
}

func isAlpha(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }
func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// parseClass parses the bracket expression at the start of s (s[0] == '[')
// by the rules of git's wildmatch and returns it with its length in bytes: a
// ']' right after the opening (and after ! or ^) is a member; "x-y" is a range,
// and a '-' after a range or a member continues from it; "[:name:]" is a named
// set, but "[:" with no ":]" before the next ']' is a '[' member. A '/' in a
// class can never match, since names hold none.
func parseClass(s string) (*class, int, error) {
	unterminated := fmt.Errorf("unterminated [ class")
	c := &class{}
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		c.negate = true
		i++
	}
	prev := rune(-1) // the last single member, which a '-' extends to a range
	for first := true; ; first = false {
		if i >= len(s) {
			return nil, 0, unterminated
		}
		switch {
		case s[i] == ']' && !first:
			return c, i + 1, nil
		case s[i] == '\\':
			i++
			if i >= len(s) {
				return nil, 0, unterminated
			}
			r, w := decode(s[i:])
			c.add(r, r)
			prev, i = r, i+w
		case s[i] == '-' && prev >= 0 && i+1 < len(s) && s[i+1] != ']':
			i++
			if s[i] == '\\' {
				i++
				if i >= len(s) {
					return nil, 0, unterminated
				}
			}
			r, w := decode(s[i:])
			c.add(prev, r)
			prev, i = r, i+w
		case s[i] == '[' && i+1 < len(s) && s[i+1] == ':':
			end := strings.IndexByte(s[i+2:], ']')
			if end < 0 {
				return nil, 0, unterminated
			}
			name, ok := strings.CutSuffix(s[i+2:i+2+end], ":")
			if !ok {
				c.add('[', '[')
				prev, i = '[', i+1
				break
			}
			is, ok := posixClasses[name]
			if !ok {
				return nil, 0, fmt.Errorf("unknown character class [:%s:]", name)
			}
			for b := range utf8.RuneSelf {
				if is(byte(b)) {
					c.add(rune(b), rune(b))
				}
			}
			prev, i = -1, i+2+end+1
		default:
			r, w := decode(s[i:])
			c.add(r, r)
			prev, i = r, i+w
		}
	}
}
