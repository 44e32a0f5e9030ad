package quickadd

import (
	"strconv"
	"strings"
	"time"
)

// The vocabulary of the grammar.

var weekdayNames = map[string]time.Weekday{
	"monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sunday": time.Sunday,
}

// weekdayAbbrevs are read only after a word that announces a day ("on
// Fri", "every tue"): on their own "sun", "sat" and "wed" are words.
var weekdayAbbrevs = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "tues": time.Tuesday, "wed": time.Wednesday,
	"weds": time.Wednesday, "thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// weekday reads a day name; abbreviated reports whether it was an
// abbreviation, plural whether it was "mondays".
func weekday(w string) (d time.Weekday, abbreviated, plural, ok bool) {
	if d, ok := weekdayNames[w]; ok {
		return d, false, false, true
	}
	if d, ok := weekdayAbbrevs[w]; ok {
		return d, true, false, true
	}
	if s, found := strings.CutSuffix(w, "s"); found {
		if d, ok := weekdayNames[s]; ok {
			return d, false, true, true
		}
	}
	return 0, false, false, false
}

var rruleDays = [7]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

var monthNames = map[string]time.Month{
	"january": time.January, "february": time.February, "march": time.March, "april": time.April,
	"may": time.May, "june": time.June, "july": time.July, "august": time.August,
	"september": time.September, "october": time.October, "november": time.November, "december": time.December,
	"jan": time.January, "feb": time.February, "mar": time.March, "apr": time.April,
	"jun": time.June, "jul": time.July, "aug": time.August, "sep": time.September,
	"sept": time.September, "oct": time.October, "nov": time.November, "dec": time.December,
}

func month(w string) (time.Month, bool) {
	m, ok := monthNames[w]
	return m, ok
}

// unit is a length of time named in "in 3 days" or "every 2 weeks".
type unit int

const (
	unitNone unit = iota
	unitMinute
	unitHour
	unitDay
	unitWeek
	unitMonth
	unitYear
)

var unitNames = map[string]unit{
	"m": unitMinute, "min": unitMinute, "mins": unitMinute, "minute": unitMinute, "minutes": unitMinute,
	"h": unitHour, "hr": unitHour, "hrs": unitHour, "hour": unitHour, "hours": unitHour,
	"d": unitDay, "day": unitDay, "days": unitDay,
	"w": unitWeek, "wk": unitWeek, "wks": unitWeek, "week": unitWeek, "weeks": unitWeek,
	"mo": unitMonth, "month": unitMonth, "months": unitMonth,
	"y": unitYear, "yr": unitYear, "yrs": unitYear, "year": unitYear, "years": unitYear,
}

func (u unit) duration() time.Duration {
	switch u {
	case unitMinute:
		return time.Minute
	case unitHour:
		return time.Hour
	}
	return 0
}

var numberWords = map[string]int{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
	"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
	"fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50,
}

// maxCount bounds the numbers of "in N days" and "every N weeks": past it
// a phrase is read but refused (unparsed), so that no date arithmetic can
// overflow.
const maxCount = 9999

// count reads a small number in digits or words. big reports digits that
// form a number larger than maxCount: it looks like a count but cannot be
// used.
func count(w string) (n int, big, ok bool) {
	if n, ok := numberWords[w]; ok {
		return n, false, true
	}
	if !allDigits(w) {
		return 0, false, false
	}
	if len(w) > 4 {
		return 0, true, true
	}
	n, _ = strconv.Atoi(w)
	return n, n > maxCount, true
}

// countUnit reads "2h", "30min", "3days": a number written together with
// its unit.
func countUnit(w string) (n int, u unit, big, ok bool) {
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	if i == 0 || i == len(w) {
		return 0, unitNone, false, false
	}
	u, ok = unitNames[w[i:]]
	if !ok {
		return 0, unitNone, false, false
	}
	n, big, _ = count(w[:i])
	return n, u, big, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ordinal reads "1st", "2nd", "23rd", "4th" (and a bare day number when
// plain is set). The suffix must fit the number ("1th" is not read).
func ordinal(w string, plain bool) (int, bool) {
	if allDigits(w) {
		if !plain || len(w) > 2 {
			return 0, false
		}
		n, _ := strconv.Atoi(w)
		return n, true
	}
	if len(w) < 3 || len(w) > 4 {
		return 0, false
	}
	digits, suffix := w[:len(w)-2], w[len(w)-2:]
	if !allDigits(digits) {
		return 0, false
	}
	n, _ := strconv.Atoi(digits)
	want := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			want = "st"
		case 2:
			want = "nd"
		case 3:
			want = "rd"
		}
	}
	if suffix != want {
		return 0, false
	}
	return n, true
}

// dayNumber reads the day of "Dec 24", "Dec 24th", "24 Dec".
func dayNumber(w string) (int, bool) {
	return ordinal(w, true)
}

// year reads a four-digit year.
func year(w string) (int, bool) {
	if len(w) != 4 || !allDigits(w) {
		return 0, false
	}
	y, _ := strconv.Atoi(w)
	return y, y >= 1
}

// Times of day named by a word.
var periodClocks = map[string]clock{
	"morning": {9, 0, true, false}, "afternoon": {15, 0, true, false},
	"evening": {18, 0, true, false}, "night": {20, 0, true, false},
	"noon": {12, 0, false, false}, "midday": {12, 0, false, false}, "midnight": {0, 0, false, false},
}

// timeWord reads "9am", "9:30", "21:00", "9.30pm", "noon". dotted allows
// "9.30" without am/pm (after "at": elsewhere it is a decimal number).
// looks reports a word shaped like a time whose numbers are out of range
// ("25:00", "13pm"), which ok=false then refuses.
func timeWord(w string, dotted bool) (c clock, looks, ok bool) {
	if w == "noon" || w == "midday" || w == "midnight" {
		return periodClocks[w], true, true
	}
	body, suffix := w, ""
	for _, s := range []string{"a.m", "p.m", "am", "pm", "a", "p"} {
		if b, found := strings.CutSuffix(w, s); found {
			body, suffix = b, s[:1]
			break
		}
	}
	hour, minute, sep := body, "", ""
	if i := strings.IndexAny(body, ":."); i >= 0 {
		hour, minute, sep = body[:i], body[i+1:], body[i:i+1]
	}
	if len(hour) < 1 || len(hour) > 2 || !allDigits(hour) {
		return clock{}, false, false
	}
	switch {
	case sep == "" && suffix == "":
		return clock{}, false, false // a plain number: a time only after "at"
	case sep != "" && (len(minute) != 2 || !allDigits(minute)):
		return clock{}, false, false
	case sep == "." && suffix == "" && !dotted:
		return clock{}, false, false
	}
	h, _ := strconv.Atoi(hour)
	m := 0
	if minute != "" {
		m, _ = strconv.Atoi(minute)
	}
	if m > 59 {
		return clock{}, true, false
	}
	switch suffix {
	case "":
		if h > 23 {
			return clock{}, true, false
		}
	case "a", "p":
		if h < 1 || h > 12 {
			return clock{}, true, false
		}
		h %= 12
		if suffix == "p" {
			h += 12
		}
	}
	return clock{h: h, m: m, plain: suffix == ""}, true, true
}

// plainHour reads the hour of "at 9" and "9 am" (a number alone).
func plainHour(w string) (h int, looks, ok bool) {
	if len(w) < 1 || len(w) > 2 || !allDigits(w) {
		return 0, false, false
	}
	h, _ = strconv.Atoi(w)
	return h, true, h <= 23
}
