package jobs

import (
	"io"
	"math/rand/v2"
	"unicode/utf8"
)

// Text generator parameters.
const (
	textVocabulary  = 4000 // distinct words
	textMaxWords    = 20   // words on a non-blank line: 1..textMaxWords
	textZipfS       = 1.1  // Zipf exponent of word frequencies: (v+rank)^-s
	textZipfV       = 2.7  // Zipf offset: the commonest word is about 6%
	textBlankPerMil = 30   // empty lines per 1000
	textSpacePerMil = 10   // lines of white space only per 1000
)

// GenText writes records lines of text for wordcount. Words come from a
// vocabulary of a few thousand pseudo-words (a few capitalised, a few with
// non-ASCII letters) with Zipf-distributed frequencies; a line has 1 to 20
// words separated mostly by one space, sometimes by a tab or a run of
// spaces and tabs, sometimes with leading or trailing white space. About
// 3% of lines are empty and 1% hold only white space. Lines end with "\n".
func GenText(w io.Writer, records int64, seed uint64) error {
	if err := checkRecords("text", records); err != nil {
		return err
	}
	rng := newRand(seed, streamText)
	vocab := textVocabularyOf(rng)
	words := newAliasTable(zipfWeights(len(vocab), textZipfS, textZipfV))
	bw := newGenWriter(w)
	line := make([]byte, 0, 512)
	for range records {
		line = appendTextLine(line[:0], rng, words, vocab)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendTextLine(b []byte, rng *rand.Rand, words *aliasTable, vocab []string) []byte {
	switch p := rng.IntN(1000); {
	case p < textBlankPerMil:
		return append(b, '\n')
	case p < textBlankPerMil+textSpacePerMil:
		return append(appendSeparator(b, rng), '\n')
	}
	if rng.IntN(20) == 0 {
		b = appendSeparator(b, rng)
	}
	n := 1 + rng.IntN(textMaxWords)
	for i := range n {
		if i > 0 {
			b = appendSeparator(b, rng)
		}
		b = append(b, vocab[words.sample(rng)]...)
	}
	if rng.IntN(20) == 0 {
		b = appendSeparator(b, rng)
	}
	return append(b, '\n')
}

// appendSeparator appends white space between words: one space 85% of
// the time, a tab 7%, else a run of two to four spaces and tabs.
func appendSeparator(b []byte, rng *rand.Rand) []byte {
	switch p := rng.IntN(100); {
	case p < 85:
		return append(b, ' ')
	case p < 92:
		return append(b, '\t')
	default:
		for range 2 + rng.IntN(3) {
			b = append(b, " \t"[rng.IntN(2)])
		}
		return b
	}
}

// textVocabularyOf makes textVocabulary distinct pseudo-words of one to
// four syllables, in random order (the order is their frequency rank).
func textVocabularyOf(rng *rand.Rand) []string {
	const (
		onsets = "bcdfghjklmnprstvwz"
		vowels = "aeiou"
	)
	accents := []string{"é", "ü", "ø", "ñ"}
	seen := make(map[string]bool, textVocabulary)
	vocab := make([]string, 0, textVocabulary)
	var b []byte
	for len(vocab) < textVocabulary {
		b = b[:0]
		for range 1 + rng.IntN(4) {
			b = append(b, onsets[rng.IntN(len(onsets))], vowels[rng.IntN(len(vowels))])
			if rng.IntN(4) == 0 {
				b = append(b, onsets[rng.IntN(len(onsets))])
			}
		}
		switch rng.IntN(50) {
		case 0: // capitalised: wordcount is case-sensitive
			b[0] -= 'a' - 'A'
		case 1: // a non-ASCII letter at the end
			b = append(b, accents[rng.IntN(len(accents))]...)
		}
		if w := string(b); !seen[w] && utf8.ValidString(w) {
			seen[w] = true
			vocab = append(vocab, w)
		}
	}
	return vocab
}
