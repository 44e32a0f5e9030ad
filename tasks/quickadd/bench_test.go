package quickadd

import (
	"strings"
	"testing"
)

// BenchmarkParse: a long text of every kind of phrase (MaxText
// characters): about 0.35 ms here (2 shared cores).
func BenchmarkParse(b *testing.B) {
	text := strings.Repeat("Pay rent every 2 weeks on mon, tue and fri at 9 remind me 30 min before !high #home on the 31st of Febtember ", 10)[:MaxText]
	for b.Loop() {
		Parse(text, refNow, berlin)
	}
}
