package utf8json

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValid(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{`"plain"`, true},
		{`{"title":"Buy milk","tags":["a","é","日本","😀"]}`, true},
		{`"\ud83d\ude00"`, true}, // a pair: 😀
		{`"\u00e9\n\"\\\/"`, true},
		{`"a\\ud800"`, true}, // an escaped backslash, then text
		{`"\uFFFD"`, true},   // U+FFFD sent on purpose is text
		{`123`, true}, {`null`, true}, {`{}`, true}, {`""`, true},
		{"\"bad\xff\xfe\"", false},
		{"\"\xc3\"", false},         // a truncated sequence
		{"\"\xed\xa0\x80\"", false}, // a surrogate encoded as UTF-8
		{"\"\xc0\xaf\"", false},     // an overlong encoding
		{`"\ud800"`, false},
		{`"\udc00"`, false},
		{`"\ud800\u0041"`, false},
		{`"\ud800x"`, false},
		{`"\ud83d\ud83d"`, false},
		{`{"k\ud800":1}`, false}, // keys too
		{`["ok", "\uDFFF"]`, false},
	} {
		if got := Valid([]byte(c.raw)); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.raw, got, c.want)
		}
	}
}

// FuzzValid: Valid never panics, and on well-formed JSON it agrees with
// what encoding/json does: text Valid refuses decodes with a U+FFFD
// replacement somewhere, and text it accepts decodes to valid UTF-8 with
// no U+FFFD that was not sent as such.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`"a"`, `{"t":"\ud800"}`, "\"\xff\"", `"\ud83d\ude00"`, `["\u00e9",1,null]`, `"\\ud800"`, `"\uFFFD"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ok := Valid(raw)
		if !json.Valid(raw) {
			return
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return
		}
		if !ok {
			// encoding/json replaced what Valid refused: U+FFFD shows.
			replaced := false
			walk(v, func(s string) { replaced = replaced || strings.ContainsRune(s, utf8.RuneError) })
			if !replaced {
				t.Fatalf("Valid(%q) is false but it decodes without replacement", raw)
			}
			return
		}
		// Valid text decodes without replacement: every decoded string is
		// valid UTF-8, and no U+FFFD appears unless the raw text has one.
		walk(v, func(s string) {
			if !utf8.ValidString(s) {
				t.Fatalf("Valid(%q) but decoded %q", raw, s)
			}
			if strings.ContainsRune(s, utf8.RuneError) && !strings.Contains(string(raw), "\uFFFD") &&
				!strings.Contains(strings.ToLower(string(raw)), `\ufffd`) {
				t.Fatalf("Valid(%q) but decoding replaced something: %q", raw, s)
			}
		})
	})
}

func walk(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walk(e, fn)
		}
	case map[string]any:
		for k, e := range v {
			fn(k)
			walk(e, fn)
		}
	}
}
