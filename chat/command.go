package chat

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Action is what an offline command asks for.
type Action string

// The offline actions.
const (
	ActionHelp     Action = "help"
	ActionAdd      Action = "add"
	ActionList     Action = "list"
	ActionComplete Action = "complete"
	ActionDelete   Action = "delete"
	ActionUpdate   Action = "update"
)

// Command is a user message as the offline assistant understands it.
type Command struct {
	Action Action
	// Title: the new task's title (add) or new title (update). For add
	// it is the user's words, dates and labels included: the offline
	// assistant reads them with package quickadd.
	Title string
	// Literal: the add's title was quoted ("add 'Call mom tonight'"), so
	// it is the title as written, with nothing read out of it.
	Literal bool
	// Remind: the add was "remind me to ...": a reminder at the due time.
	Remind bool
	// Description: the new description (update), when that is what changes.
	Description *string
	// Status filters list: all, pending or completed.
	Status string
	// TaskID names the task by id; when 0, Match names it by words of its
	// title ("delete the meeting task": Match is "meeting").
	TaskID int64
	Match  string
}

// maxCommandRunes bounds what ParseCommand looks at: commands are short.
const maxCommandRunes = 500

var (
	reAdd = []*regexp.Regexp{
		regexp.MustCompile(`^(?:add|create|new|make)\s+(?:a\s+|an\s+)?(?:new\s+)?(?:task|todo|to-do|item|reminder)\s*(?:to\s+|called\s+|named\s+|titled\s+|for\s+|:\s*|-\s*)?(.+)$`),
		regexp.MustCompile(`^(?:remind me to|i need to|i have to|i must|don't let me forget to)\s+(.+)$`),
		regexp.MustCompile(`^(?:add|create)\s+(.+?)(?:\s+to\s+(?:my\s+)?(?:tasks|list|todo list|to-do list|todos))?$`),
	}
	reComplete = []*regexp.Regexp{
		regexp.MustCompile(`^(?:mark|set|tick|check)\s+(?:off\s+)?task\s*#?(\d+)(?:\s+(?:off\s+)?(?:as\s+)?(?:complete|completed|done|finished))?$`),
		regexp.MustCompile(`^(?:complete|finish|tick off|check off|close)\s+task\s*#?(\d+)$`),
		regexp.MustCompile(`^task\s*#?(\d+)\s+is\s+(?:done|complete|completed|finished)$`),
		regexp.MustCompile(`^i(?:'ve| have)?\s+(?:finished|completed|done)\s+task\s*#?(\d+)$`),
	}
	reCompleteByName = []*regexp.Regexp{
		regexp.MustCompile(`^(?:mark|set|tick|check)\s+(?:off\s+)?(?:the\s+)?(.+?)(?:\s+task)?\s+(?:off\s+)?(?:as\s+)?(?:complete|completed|done|finished)$`),
		regexp.MustCompile(`^(?:complete|finish|tick off|check off)\s+(?:the\s+)?(.+?)(?:\s+task)?$`),
		regexp.MustCompile(`^i(?:'ve| have)?\s+(?:finished|completed|done)\s+(?:the\s+)?(.+?)(?:\s+task)?$`),
	}
	reDelete = []*regexp.Regexp{
		regexp.MustCompile(`^(?:delete|remove|drop|erase|get rid of|cancel)\s+task\s*#?(\d+)$`),
	}
	reDeleteByName = []*regexp.Regexp{
		regexp.MustCompile(`^(?:delete|remove|drop|erase|get rid of)\s+(?:the\s+|my\s+)?(.+?)(?:\s+(?:task|todo|item))?$`),
	}
	reUpdate = []*regexp.Regexp{
		regexp.MustCompile(`^(?:change|rename|update|edit|set)\s+task\s*#?(\d+)(?:'s)?\s+(?:(?:title|name)\s+)?to\s+(.+)$`),
		regexp.MustCompile(`^(?:change|rename|update|edit|set)\s+(?:the\s+)?(?:title|name)\s+of\s+task\s*#?(\d+)\s+to\s+(.+)$`),
	}
	reDescribe = []*regexp.Regexp{
		regexp.MustCompile(`^(?:change|update|edit|set)\s+(?:the\s+)?description\s+of\s+task\s*#?(\d+)\s+to\s+(.+)$`),
		regexp.MustCompile(`^(?:change|update|edit|set)\s+task\s*#?(\d+)(?:'s)?\s+description\s+to\s+(.+)$`),
	}
	reUpdateByName = []*regexp.Regexp{
		regexp.MustCompile(`^(?:change|rename|update|edit)\s+(?:the\s+)?(.+?)(?:\s+task)?\s+to\s+(.+)$`),
	}
	reList     = regexp.MustCompile(`\b(?:tasks?|todos?|to-dos?|list|pending|completed|done|finished|left|remaining|open|outstanding)\b`)
	reListVerb = regexp.MustCompile(`^(?:show|list|display|get|give|tell|see|view|what|what's|whats|which|do i have|how many|my)\b`)
)

// ParseCommand reads one of the seed's example commands (and a few
// variants) from a user message. Anything it does not understand is
// ActionHelp. It never fails and never panics: the input is untrusted.
func ParseCommand(msg string) Command {
	s := normalise(msg)
	// Strip politeness that changes nothing.
	for again := true; again; {
		again = false
		for _, p := range []string{"please ", "can you ", "could you ", "would you ", "hey ", "hi ", "ok ", "okay "} {
			if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
				s, again = strings.TrimSpace(s[len(p):]), true
			}
		}
	}
	s = trimEnd(s)
	if s == "" {
		return Command{Action: ActionHelp}
	}
	lower, pos := lowerWithOffsets(s)
	// sub returns the original text (with the user's casing) of the match
	// at [i, j) in lower.
	sub := func(i, j int) string { return s[pos[i]:pos[j]] }
	switch lower {
	case "help", "?", "what can you do", "commands":
		return Command{Action: ActionHelp}
	}

	// Updates first: "change task 1 to 'Call mom tonight'" must not read
	// as anything else.
	for _, re := range reDescribe {
		if m := re.FindStringSubmatchIndex(lower); m != nil {
			if id, ok := parseID(lower[m[2]:m[3]]); ok {
				d := unquote(sub(m[4], m[5]))
				return Command{Action: ActionUpdate, TaskID: id, Description: &d}
			}
		}
	}
	for _, re := range reUpdate {
		if m := re.FindStringSubmatchIndex(lower); m != nil {
			if id, ok := parseID(lower[m[2]:m[3]]); ok {
				if t := unquote(sub(m[4], m[5])); t != "" {
					return Command{Action: ActionUpdate, TaskID: id, Title: t}
				}
			}
		}
	}
	for _, re := range reComplete {
		if m := re.FindStringSubmatch(lower); m != nil {
			if id, ok := parseID(m[1]); ok {
				return Command{Action: ActionComplete, TaskID: id}
			}
		}
	}
	for _, re := range reDelete {
		if m := re.FindStringSubmatch(lower); m != nil {
			if id, ok := parseID(m[1]); ok {
				return Command{Action: ActionDelete, TaskID: id}
			}
		}
	}
	// Listing before adding: "what's pending?" or "show me all my tasks"
	// are questions, not new tasks.
	if reListVerb.MatchString(lower) && reList.MatchString(lower) {
		return Command{Action: ActionList, Status: listStatus(lower)}
	}
	for i, re := range reAdd {
		if m := re.FindStringSubmatchIndex(lower); m != nil {
			raw := strings.TrimSpace(sub(m[2], m[3]))
			if t := title(unquote(raw)); t != "" {
				return Command{Action: ActionAdd, Title: t, Literal: unquote(raw) != raw,
					Remind: i == 1 && strings.HasPrefix(lower, "remind me to")}
			}
		}
	}
	for _, re := range reUpdateByName {
		if m := re.FindStringSubmatchIndex(lower); m != nil {
			name := matchWords(lower[m[2]:m[3]])
			if t := unquote(sub(m[4], m[5])); name != "" && t != "" {
				return Command{Action: ActionUpdate, Match: name, Title: t}
			}
		}
	}
	for _, re := range reCompleteByName {
		if m := re.FindStringSubmatch(lower); m != nil {
			if name := matchWords(m[1]); name != "" {
				return Command{Action: ActionComplete, Match: name}
			}
		}
	}
	for _, re := range reDeleteByName {
		if m := re.FindStringSubmatch(lower); m != nil {
			if name := matchWords(m[1]); name != "" {
				return Command{Action: ActionDelete, Match: name}
			}
		}
	}
	return Command{Action: ActionHelp}
}

// normalise keeps a bounded prefix of valid UTF-8 on one line.
func normalise(msg string) string {
	msg = strings.ToValidUTF8(msg, "")
	if utf8.RuneCountInString(msg) > maxCommandRunes {
		msg = string([]rune(msg)[:maxCommandRunes])
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, msg)
	return strings.Join(strings.Fields(msg), " ")
}

// lowerWithOffsets lower-cases s rune by rune and returns, for every byte
// offset of a rune start in lower (and for len(lower)), the matching offset
// in s: lower-casing can change a rune's length, and matches found in lower
// must cut s at the same runes.
func lowerWithOffsets(s string) (string, []int) {
	var b strings.Builder
	b.Grow(len(s))
	pos := make([]int, 0, len(s)+1)
	for i, r := range s {
		n := b.Len()
		b.WriteRune(unicode.ToLower(r))
		for k := n; k < b.Len(); k++ {
			pos = append(pos, i) // every byte of the rune maps to its start
		}
	}
	pos = append(pos, len(s))
	return b.String(), pos
}

func trimEnd(s string) string {
	return strings.TrimRightFunc(s, func(r rune) bool { return r == '?' || r == '!' || r == '.' || r == ' ' })
}

func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func listStatus(lower string) string {
	switch {
	case strings.Contains(lower, "pending") || strings.Contains(lower, "left") || strings.Contains(lower, "remaining") ||
		strings.Contains(lower, "open") || strings.Contains(lower, "outstanding") || strings.Contains(lower, "to do") ||
		strings.Contains(lower, "incomplete") || strings.Contains(lower, "unfinished"):
		return "pending"
	case strings.Contains(lower, "completed") || strings.Contains(lower, "done") || strings.Contains(lower, "finished"):
		return "completed"
	}
	return "all"
}

var quotes = []struct{ open, close string }{
	{`"`, `"`}, {`'`, `'`}, {"“", "”"}, {"‘", "’"}, {"«", "»"}, {"`", "`"},
}

// unquote trims spaces and one pair of matching quotes.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	for _, q := range quotes {
		if len(s) >= len(q.open)+len(q.close) && strings.HasPrefix(s, q.open) && strings.HasSuffix(s, q.close) {
			return strings.TrimSpace(s[len(q.open) : len(s)-len(q.close)])
		}
	}
	return s
}

// title makes a task title of free text: first letter upper-cased
// ("buy groceries" becomes "Buy groceries").
func title(s string) string {
	s = strings.TrimSpace(s)
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// matchWords keeps the words that name a task: "the meeting" is "meeting".
func matchWords(s string) string {
	var keep []string
	for _, w := range strings.Fields(unquote(s)) {
		switch w {
		case "the", "a", "an", "my", "task", "todo", "item", "one":
			continue
		}
		keep = append(keep, w)
	}
	return strings.Join(keep, " ")
}
