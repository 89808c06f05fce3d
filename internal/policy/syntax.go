package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// weekdays lists day names in Monday-first order, as Coffer prints them.
var weekdays = []struct {
	short, long string
	day         time.Weekday
}{
	{"mon", "monday", time.Monday},
	{"tue", "tuesday", time.Tuesday},
	{"wed", "wednesday", time.Wednesday},
	{"thu", "thursday", time.Thursday},
	{"fri", "friday", time.Friday},
	{"sat", "saturday", time.Saturday},
	{"sun", "sunday", time.Sunday},
}

// dayIndex returns the Monday-first index (0..6) of a day name.
func dayIndex(name string) (int, bool) {
	for i, w := range weekdays {
		if name == w.short || name == w.long {
			return i, true
		}
	}
	return 0, false
}

// dayWords reports whether word looks like a day list: "daily", a day name,
// or something with the list punctuation "," or "-".
func dayWords(word string) bool {
	if word == "daily" || strings.ContainsAny(word, ",-") {
		return true
	}
	_, ok := dayIndex(word)
	return ok
}

// dayList is a set of weekdays, indexed by time.Weekday.
type dayList [7]bool

// parseDays parses "daily", "mon-fri", "sat,sun", "mon,wed-fri"; a range
// may wrap around the week ("fri-mon").
func parseDays(s string) (dayList, error) {
	var set dayList
	if s == "daily" {
		for i := range set {
			set[i] = true
		}
		return set, nil
	}
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return set, fmt.Errorf("empty item in day list %q", s)
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, ok := dayIndex(lo)
		if !ok {
			return set, fmt.Errorf("unknown day %q in %q; days are mon tue wed thu fri sat sun", lo, s)
		}
		b := a
		if isRange {
			if b, ok = dayIndex(hi); !ok {
				return set, fmt.Errorf("unknown day %q in %q; days are mon tue wed thu fri sat sun", hi, s)
			}
		}
		for i := a; ; i = (i + 1) % 7 {
			set[weekdays[i].day] = true
			if i == b {
				break
			}
		}
	}
	return set, nil
}

// String prints the set as "daily" or as Monday-first ranges ("mon-fri",
// "sat,sun", "mon,wed-fri").
func (set dayList) String() string {
	all := true
	for _, on := range set {
		all = all && on
	}
	if all {
		return "daily"
	}
	var parts []string
	for i := 0; i < 7; {
		if !set[weekdays[i].day] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && set[weekdays[j+1].day] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, weekdays[i].short+"-"+weekdays[j].short)
		case j == i+1:
			parts = append(parts, weekdays[i].short, weekdays[j].short)
		default:
			parts = append(parts, weekdays[i].short)
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// parseClock parses "HH:MM" or "H:MM" into minutes after midnight. With
// allow24, "24:00" (the end of the day) is accepted too.
func parseClock(s string, allow24 bool) (int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 || !digits(hs) || !digits(ms) {
		return 0, fmt.Errorf("bad time %q: write HH:MM, e.g. 02:30", s)
	}
	h, _ := strconv.Atoi(hs)
	m, _ := strconv.Atoi(ms)
	switch {
	case allow24 && h == 24 && m == 0:
		return 1440, nil
	case h > 23:
		return 0, fmt.Errorf("bad time %q: hours run from 00 to 23", s)
	case m > 59:
		return 0, fmt.Errorf("bad time %q: minutes run from 00 to 59", s)
	}
	return h*60 + m, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func formatClock(mins int) string {
	return fmt.Sprintf("%02d:%02d", mins/60, mins%60)
}

// splitDaysAndRest splits the fields of a spec into the day words (all
// fields before the first one that starts with a digit) and the rest, joined
// without spaces so "mon, wed 02:00, 14:00" reads as "mon,wed" and
// "02:00,14:00".
func splitDaysAndRest(fields []string) (days, rest string) {
	i := 0
	for i < len(fields) && !(fields[i][0] >= '0' && fields[i][0] <= '9') {
		i++
	}
	return strings.Join(fields[:i], ""), strings.Join(fields[i:], "")
}
