// Package utf8json checks that the strings of a JSON text are valid
// Unicode before encoding/json decodes them.
//
// encoding/json replaces invalid UTF-8 bytes and lone surrogate escapes
// ("\ud800") with U+FFFD while decoding, so a check on the decoded string
// cannot see them, and a client's bad text would be stored altered instead
// of refused. [Valid] looks at the raw text instead.
package utf8json

import "unicode/utf8"

// Valid reports whether every string in the JSON text raw (object keys
// included) is valid Unicode: well-formed UTF-8 bytes, and \u escapes that
// are not surrogates except as a high-low pair. raw is expected to be
// well-formed JSON (a json.RawMessage from a decoder); on other input
// Valid checks what it can and never panics.
func Valid(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		// A string: up to its closing quote.
		for i++; i < len(raw) && raw[i] != '"'; {
			switch c := raw[i]; {
			case c == '\\':
				if i+1 < len(raw) && raw[i+1] == 'u' {
					r, ok := hex4(raw, i+2)
					if !ok {
						return false
					}
					i += 6
					switch {
					case r >= 0xDC00 && r <= 0xDFFF:
						return false // a low surrogate without its high one
					case r >= 0xD800 && r <= 0xDBFF:
						if i+1 >= len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
							return false
						}
						lo, ok := hex4(raw, i+2)
						if !ok || lo < 0xDC00 || lo > 0xDFFF {
							return false
						}
						i += 6
					}
				} else {
					i += 2
				}
			case c < utf8.RuneSelf:
				i++
			default:
				r, size := utf8.DecodeRune(raw[i:])
				if r == utf8.RuneError && size == 1 {
					return false
				}
				i += size
			}
		}
	}
	return true
}

// hex4 reads the four hex digits of a \u escape starting at raw[at].
func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
