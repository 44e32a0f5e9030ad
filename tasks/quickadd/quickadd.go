package quickadd

import (
	"errors"
	"strings"
	"time"

	"tasksync/tasks"
)

// Field names what an understood phrase sets; the values are the task's
// JSON keys.
type Field string

// The fields a text can set besides the title.
const (
	FieldDueAt      Field = "due_at"
	FieldRemindAt   Field = "remind_at"
	FieldRecurrence Field = "recurrence"
	FieldPriority   Field = "priority"
	FieldTags       Field = "tags"
)

// MaxText is the longest text the REST endpoint parses, in characters:
// a title (tasks.MaxTitle) with room for the phrases around it.
const MaxText = 1000

// Span is a phrase of the text that was understood.
type Span struct {
	Text  string // as typed, with the joining words taken with it ("due tomorrow at 9")
	Field Field
	// Value is what it set, as the task API writes it: a time in
	// tasks.TimeLayout, the rule, the priority, the tag.
	Value      string
	Start, End int // byte offsets of Text in the parsed text
}

// Fragment is a phrase that looks like a date, time, rule or label but
// could not be read. It is left out of the title.
type Fragment struct {
	Text       string
	Reason     string // why, for people: "no such time of day"
	Start, End int    // byte offsets
}

// Result is what a quick-add text says.
type Result struct {
	Title string
	// DueAt is in the zone given to Parse; AllDay means no time of day
	// was said, and DueAt is the start of that day.
	DueAt      *time.Time
	AllDay     bool
	RemindAt   *time.Time
	Recurrence string         // RFC 5545 RRULE without "RRULE:"; DueAt is its first occurrence
	Priority   tasks.Priority // "" when none was said
	Tags       []string
	Understood []Span
	Unparsed   []Fragment
}

// Parse reads a quick-add text ("Pay rent every month on the 1st !high
// #home") relative to now in loc (nil means UTC). Every date and time is
// made in loc with time.Date, so "tomorrow at 9" is 09:00 local on either
// side of a daylight-saving change. It never fails: what it cannot read
// is in Unparsed, and what it does not recognise at all is the title.
func Parse(text string, now time.Time, loc *time.Location) Result {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	p := &parser{toks: lex(text), now: now, loc: loc, today: civilOf(now)}
	return p.parse(text)
}

// found is a phrase the parse keeps, with the joining words before it.
type found struct {
	match
	first, last int // token range, joining words included
	conflict    string
}

func (p *parser) parse(text string) Result {
	// 1. Phrases, left to right, longest first.
	var cands []found
	for i := 0; i < len(p.toks); {
		if m, ok := p.at(i); ok {
			cands = append(cands, found{match: m, first: i, last: i + m.n - 1})
			i += m.n
			continue
		}
		i++
	}
	// 2. A weak phrase stands only where nothing but phrases, joining
	// words or the end follows it; decided right to left.
	starts := map[int]bool{}
	var kept []found
	for k := len(cands) - 1; k >= 0; k-- {
		c := cands[k]
		if c.weak && !p.endsHere(c.last+1, starts) {
			continue
		}
		starts[c.first] = true
		kept = append(kept, c)
	}
	for l, r := 0, len(kept)-1; l < r; l, r = l+1, r-1 {
		kept[l], kept[r] = kept[r], kept[l]
	}
	// 3. Joining words right before a phrase go with it.
	inPhrase := make([]bool, len(p.toks))
	for _, c := range kept {
		for t := c.first; t <= c.last; t++ {
			inPhrase[t] = true
		}
	}
	for k := range kept {
		for t := kept[k].first - 1; t >= 0 && !inPhrase[t] && !p.toks[t].quoted && connectors[p.toks[t].word]; t-- {
			inPhrase[t] = true
			kept[k].first = t
		}
	}
	// 4. What the phrases say; a second due date, priority, rule or
	// reminder is a conflict, reported rather than guessed.
	var (
		res       Result
		date      *civil
		clk       *clock
		instant   *time.Time
		rl        *rule
		remind    *match
		seenTags  = map[string]bool{}
		endings   []int
		dueSpans  []int
		remindIdx = -1
		ruleIdx   = -1
	)
	for k := range kept {
		c := &kept[k]
		if c.bad != "" {
			continue
		}
		switch c.field {
		case FieldTags:
			if key := strings.ToLower(c.tag); !seenTags[key] {
				seenTags[key] = true
				res.Tags = append(res.Tags, c.tag)
			}
		case FieldPriority:
			if res.Priority != "" && res.Priority != c.prio {
				c.conflict = "a second priority"
				continue
			}
			res.Priority = c.prio
		case FieldRecurrence:
			if c.ending {
				endings = append(endings, k)
				continue
			}
			if rl != nil {
				c.conflict = "a second repeat rule"
				continue
			}
			rl, ruleIdx = c.rule, k
		case FieldRemindAt:
			if remind != nil {
				c.conflict = "a second reminder"
				continue
			}
			remind, remindIdx = &c.match, k
		case FieldDueAt:
			hardClock := c.clock != nil && !c.clock.soft
			switch {
			case c.at != nil && (date != nil || clk != nil || instant != nil),
				c.date != nil && (date != nil || instant != nil),
				hardClock && (instant != nil || clk != nil && !clk.soft):
				c.conflict = "a second due date or time"
				continue
			}
			if c.at != nil {
				instant = c.at
			}
			if c.date != nil {
				date = c.date
			}
			if c.clock != nil {
				clk = mergeClock(clk, c.clock)
			}
			dueSpans = append(dueSpans, k)
		}
	}
	// An end said apart from its rule ("every day at 7am until Dec 24").
	for _, k := range endings {
		e := kept[k].rule
		switch {
		case rl == nil:
			kept[k].bad = "an end needs a repeat rule (every ...)"
		case rl.count > 0 || rl.until != nil:
			kept[k].conflict = "a second end of the rule"
		default:
			rl.count, rl.until = e.count, e.until
		}
	}
	// 5. The due time: a rule's first occurrence, an instant, a date
	// (at a time or all day), or a time alone (today, or tomorrow when
	// it has passed).
	loc := p.loc
	if instant != nil {
		i := instant.In(loc)
		d, k := civilOf(i), clock{h: i.Hour(), m: i.Minute()}
		if rl != nil {
			date, clk = &d, &k
		} else {
			res.DueAt = &i
		}
	}
	switch {
	case res.DueAt != nil:
	case rl != nil:
		from := p.today
		if date != nil {
			from = *date
		}
		first, err := rl.first(from, clk, p.now, loc)
		if err == nil && rl.until != nil && rl.until.before(first) {
			err = errors.New("the rule ends before its first occurrence")
		}
		if err != nil {
			kept[ruleIdx].bad = err.Error()
			rl = nil
			break
		}
		res.DueAt, res.AllDay = p.dueAt(first, clk)
		res.Recurrence = rl.text(loc)
	case date != nil:
		res.DueAt, res.AllDay = p.dueAt(*date, clk)
	case clk != nil:
		d := p.today
		if !d.at(*clk, loc).After(p.now) {
			d = d.addDays(1)
		}
		res.DueAt, res.AllDay = p.dueAt(d, clk)
	}
	if res.DueAt != nil && !inRange(*res.DueAt) {
		for _, k := range dueSpans {
			kept[k].bad = "the date is out of range"
		}
		if ruleIdx >= 0 {
			kept[ruleIdx].bad = "the date is out of range"
		}
		res.DueAt, res.AllDay, res.Recurrence = nil, false, ""
	}
	// 6. The reminder.
	if remind != nil {
		t, why := p.remindAt(*remind, res.DueAt, res.AllDay)
		if why != "" {
			kept[remindIdx].bad = why
		} else {
			res.RemindAt = t
		}
	}
	// 7. What was understood, what was not, and the title.
	res.Understood, res.Unparsed = p.report(text, kept, &res)
	var title []string
	for t, tok := range p.toks {
		if !inPhrase[t] {
			title = append(title, tok.raw)
		}
	}
	res.Title = strings.Trim(strings.Join(title, " "), " ,;:-–—")
	if res.Tags == nil {
		res.Tags = []string{}
	}
	return res
}

// endsHere reports whether, from token t on, only joining words come
// before the end of the text or a phrase that stands (in starts).
func (p *parser) endsHere(t int, starts map[int]bool) bool {
	for ; t < len(p.toks); t++ {
		if starts[t] {
			return true
		}
		if p.toks[t].quoted || !connectors[p.toks[t].word] {
			return false
		}
	}
	return true
}

// mergeClock joins the time of day already read with a new one: an
// explicit time replaces a part of the day, and a plain hour after an
// evening is in the evening ("tonight at 9" is 21:00).
func mergeClock(had, k *clock) *clock {
	if had == nil || k.soft {
		if had != nil && !had.soft {
			// "at 5 tomorrow evening" is 17:00.
			if k.h >= 12 && had.plain && had.h < 12 {
				out := *had
				out.h += 12
				return &out
			}
			return had
		}
		return k
	}
	out := *k
	if had.soft && had.h >= 12 && k.plain && k.h < 12 {
		out.h += 12
	}
	return &out
}

// dueAt is date d at clock k in the parser's zone, or the start of the day.
func (p *parser) dueAt(d civil, k *clock) (*time.Time, bool) {
	if k == nil {
		t := d.at(clock{}, p.loc)
		return &t, true
	}
	t := d.at(*k, p.loc)
	return &t, false
}

// defaultRemindClock is the time of a reminder given only a day ("remind
// me tomorrow").
var defaultRemindClock = clock{h: 9}

// remindAt is the reminder's time, or why it cannot be set.
func (p *parser) remindAt(m match, due *time.Time, allDay bool) (*time.Time, string) {
	switch {
	case m.atDue || m.before > 0:
		if due == nil {
			return nil, "a reminder relative to the due time needs a due time"
		}
		t := due.Add(-m.before)
		return &t, ""
	case m.at != nil:
		t := m.at.In(p.loc)
		return &t, ""
	case m.date != nil:
		k := defaultRemindClock
		if m.clock != nil {
			k = *m.clock
		}
		t := m.date.at(k, p.loc)
		return &t, ""
	case m.clock != nil:
		// On the due day (the day before when that would be after the
		// due time); without a due time, the next such time.
		if due != nil {
			d := civilOf(*due)
			t := d.at(*m.clock, p.loc)
			if !allDay && t.After(*due) {
				t = d.addDays(-1).at(*m.clock, p.loc)
			}
			return &t, ""
		}
		d := p.today
		if !d.at(*m.clock, p.loc).After(p.now) {
			d = d.addDays(1)
		}
		t := d.at(*m.clock, p.loc)
		return &t, ""
	}
	return nil, "cannot read when to remind"
}

func inRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// report lists the understood phrases (adjacent due-date phrases as one)
// and the unreadable ones, in text order.
func (p *parser) report(text string, kept []found, res *Result) ([]Span, []Fragment) {
	var spans []Span
	var frags []Fragment
	stamp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(tasks.TimeLayout)
	}
	lastDue := -10
	for _, c := range kept {
		start, end := p.toks[c.first].start, p.toks[c.last].end
		switch {
		case c.bad != "" || c.conflict != "":
			why := c.bad
			if why == "" {
				why = c.conflict
			}
			frags = append(frags, Fragment{Text: text[start:end], Reason: why, Start: start, End: end})
			continue
		case c.field == FieldRecurrence && res.Recurrence == "":
			if c.ending { // the end of a rule that could not be read
				frags = append(frags, Fragment{Text: text[start:end], Reason: "the rule it ends could not be read", Start: start, End: end})
			}
			continue
		}
		s := Span{Text: text[start:end], Field: c.field, Start: start, End: end}
		switch c.field {
		case FieldDueAt:
			s.Value = stamp(res.DueAt)
			if lastDue == c.first-1 && len(spans) > 0 && spans[len(spans)-1].Field == FieldDueAt {
				prev := &spans[len(spans)-1]
				prev.End, prev.Text = end, text[prev.Start:end]
				lastDue = c.last
				continue
			}
			lastDue = c.last
		case FieldRemindAt:
			s.Value = stamp(res.RemindAt)
		case FieldRecurrence:
			s.Value = res.Recurrence
		case FieldPriority:
			s.Value = string(c.prio)
		case FieldTags:
			s.Value = c.tag
		}
		spans = append(spans, s)
	}
	return spans, frags
}
