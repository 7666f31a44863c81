package shuffle

// Helpers of this package's tests that the reader's tests use too: those
// are in package shuffle_test, since they run node services (package
// shuffleservice, which imports this one).

// TestRecord is a generated record with its partition.
type TestRecord struct {
	P          int
	Key, Value []byte
}

// GenRecords is genRecords (writer_test.go) for package shuffle_test.
func GenRecords(seed uint64, n, r int) []TestRecord {
	recs := genRecords(seed, n, r)
	out := make([]TestRecord, len(recs))
	for i, rec := range recs {
		out[i] = TestRecord{P: rec.p, Key: rec.key, Value: rec.value}
	}
	return out
}
