// Package jobs holds shoal's built-in jobs, the generators of their inputs
// (`shoal gen`), and single-process reference computations that tests
// compare the distributed jobs against.
//
// # The built-in jobs
//
// Outputs are text part files of tab-separated fields, one record per
// line, except sort's, which are gensort records. Inputs are a file or a
// directory read recursively, and outputs follow the rules of
// client.SaveAsTextFile (package client, "Inputs" and "Outputs"). An
// empty input gives an empty output (empty part files), except for
// pagerank, which has no page to rank and fails saying so.
//
// wordcount: words are what strings.Fields returns for each line (any
// Unicode white space separates; case and punctuation are kept). Output
// "word\tcount". RefWordCount gives the lines sorted by word.
//
// ecommerce: CSV rows of the 2019 e-commerce behaviour data set,
//
//	event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
//	2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-...
//
// Each line is parsed on its own by ParseEcommerceLine, whose doc comment
// (with ParseEcommerceRow's) is the definition of a row: empty lines and
// header lines are skipped; a malformed row is counted and skipped (or,
// with --strict, fails the job). The job keeps purchases and groups them by
// user_session, writing
//
//	user_session \t max event_time \t user_ids \t count \t sum
//
// where max event_time is the latest purchase's event_time without " UTC",
// user_ids the distinct user_ids ascending numerically, comma-separated,
// count the number of purchases and sum their prices, added in exact
// integer cents and printed with AppendCents ("1234.50"). RefEcommerce
// gives the lines sorted by user_session, and the malformed row count.
//
// pagerank: an edge list, "src dst" per line (SNAP format; "#" lines are
// comments), every line one link. Ranks start at 1/N over the N pages that
// appear, and each of --iterations steps (default 20) computes
//
//	rank'(p) = (1-d)/N + d * (sum over links q->p of rank(q)/out(q) + D/N)
//
// with d = 0.85 and D the rank held by dangling pages (no out-links), so
// ranks always sum to 1; D is summed with client.Fold, so it is 0 for a
// graph without dangling pages (a cycle ranks 1/N each). Output
// "page\trank". RefPageRank is a plain power iteration in float64;
// compare with a tolerance, as the distributed sum is in another order.
// With CheckpointEvery, ranks[i] is checkpointed as pagerank-ranks-NNNNNN
// in the run's part of the store, with job "pagerank" and the input's
// client.InputIdentity; Resume reads the newest complete one (across
// runs) of the same job, input and partitions at an iteration no later
// than Iterations, and PageRankOptions.Resumed hears which.
//
// sort: gensort records of SortRecordSize (100) bytes sorted by their
// first SortKeySize (10) bytes, compared as unsigned bytes. The output is
// part files whose concatenation in order is sorted: CheckSorted verifies
// that, and RecordsDigest, an order-independent digest, that the output
// holds exactly the input's records.
//
// # Generators
//
// GenText, GenEcommerce, GenGraph and GenSort (Generate by name) write
// inputs of any size: deterministic (the same records and seed give the
// same bytes with the same Go release), streaming through a 64 KiB buffer in
// memory that does not grow with the number of records, and fast (no
// formatting through fmt, table-driven sampling). Their doc comments
// describe the distributions. Records are lines for text, rows after the
// header for ecommerce, edges for graph and 100-byte records for sort.
//
// The distributed jobs live beside these in wordcount.go, ecommerce.go,
// pagerank.go and sort.go.
package jobs
