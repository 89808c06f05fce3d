package policy

import (
	"fmt"
	"math/big"
	"strings"
)

// Unlimited is the rate that means "no limit".
const Unlimited int64 = 0

// rateUnits maps unit names (lower case) to bytes.
var rateUnits = map[string]int64{
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// bitUnits are units in bits per second, divided by 8 after multiplying.
var bitUnits = map[string]int64{
	"bit":  1,
	"kbit": 1000,
	"mbit": 1000 * 1000,
	"gbit": 1000 * 1000 * 1000,
}

// ParseRate parses a bandwidth limit: a number (decimals allowed) and a unit
// of bytes (B, KB, MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: powers
// of 1024) or bits (bit, kbit, Mbit, Gbit), optionally followed by "/s":
// "8MiB/s", "500KiB/s", "10MB/s", "1.5MiB/s", "100Mbit/s". "unlimited" and
// "0" mean no limit and give Unlimited (0). Units are case-insensitive. The
// result is in bytes per second, rounded down; it must be at least 1.
func ParseRate(s string) (int64, error) {
	v, err := parseRate(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("rate %q: %w", s, err)
	}
	return v, nil
}

func parseRate(s string) (int64, error) {
	const want = "write e.g. 8MiB/s, 500KiB/s, 10MB/s or unlimited"
	low := strings.ToLower(s)
	if low == "unlimited" || low == "0" {
		return Unlimited, nil
	}
	i := 0
	for i < len(low) && (low[i] >= '0' && low[i] <= '9' || low[i] == '.') {
		i++
	}
	num, unit := low[:i], strings.TrimSpace(low[i:])
	if num == "" || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("missing number; %s", want)
	}
	unit = strings.TrimSuffix(unit, "/s")
	if unit == "" {
		return 0, fmt.Errorf("missing unit; %s", want)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bad number %q; %s", num, want)
	}
	if r.Sign() == 0 {
		return Unlimited, nil
	}
	if m, ok := bitUnits[unit]; ok {
		r.Mul(r, big.NewRat(m, 8))
	} else if m, ok := rateUnits[unit]; ok {
		r.Mul(r, big.NewRat(m, 1))
	} else {
		return 0, fmt.Errorf("unknown unit %q; units are B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit", unit)
	}
	q := new(big.Int).Quo(r.Num(), r.Denom())
	switch {
	case !q.IsInt64():
		return 0, fmt.Errorf("too large")
	case q.Sign() == 0:
		return 0, fmt.Errorf("below 1 byte per second; use 0 or unlimited for no limit")
	}
	return q.Int64(), nil
}

// FormatRate prints a rate in the largest binary unit that divides it
// ("4MiB/s", "1536KiB/s", "1000B/s"), or "unlimited"; ParseRate reads it
// back.
func FormatRate(bps int64) string {
	if bps <= 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if bps%u.n == 0 {
			return fmt.Sprintf("%d%s/s", bps/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB/s", bps)
}
