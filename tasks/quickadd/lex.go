package quickadd

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// token is one whitespace-separated word of the text, or one double-quoted
// run (never read as anything but title).
type token struct {
	raw        string // as typed
	word       string // lower case, surrounding punctuation removed; what the grammar reads
	start, end int    // byte offsets of raw in the text
	quoted     bool
}

// lex splits text into tokens. A double quote at the start of a word opens
// a run that ends at the next double quote followed by a space or the end;
// without such a closing quote the quote is an ordinary character.
func lex(text string) []token {
	var toks []token
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		start := i
		if r == '"' {
			if end := closingQuote(text, i+1); end > 0 {
				toks = append(toks, token{raw: text[start:end], start: start, end: end, quoted: true})
				i = end
				continue
			}
		}
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if unicode.IsSpace(r) {
				break
			}
			i += size
		}
		raw := text[start:i]
		toks = append(toks, token{raw: raw, word: normalise(raw), start: start, end: i})
	}
	return toks
}

// closingQuote returns the offset just past the quote that closes a run
// opened before from (a quote followed by a space or the end of the text,
// with any punctuation right after it kept in the run), or -1.
func closingQuote(text string, from int) int {
	for j := from; j < len(text); j++ {
		if text[j] != '"' {
			continue
		}
		k := j + 1
		for k < len(text) && strings.ContainsRune(",.;:!?)", rune(text[k])) {
			k++
		}
		if k == len(text) {
			return k
		}
		if r, _ := utf8.DecodeRuneInString(text[k:]); unicode.IsSpace(r) {
			return k
		}
	}
	return -1
}

// normalise lower-cases a word and strips the punctuation that sentences
// put around words. A leading "!" or "#" is kept: it marks a priority or a
// tag.
func normalise(raw string) string {
	w := strings.ToLower(raw)
	w = strings.TrimLeft(w, "(\"'")
	w = strings.TrimRight(w, ",.;:!?)\"'")
	return w
}

// connectors are words that only join a date, time or label to the rest of
// the sentence ("buy milk *on* Monday *with* high priority"). Right before
// something understood they are taken out of the title with it.
var connectors = map[string]bool{
	"at": true, "on": true, "by": true, "due": true, "with": true, "and": true,
	"&": true, "for": true, "from": true, "starting": true, "starts": true,
	"-": true, "–": true, "—": true, "@": true, "is": true, "repeat": true,
	"repeats": true, "repeating": true, "": true,
}
