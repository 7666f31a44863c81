// Command duckcmp runs shoal's ecommerce job (jobs.Ecommerce) as one SQL
// statement in DuckDB: the purchases of a CSV in the 2019 e-commerce
// behaviour format, grouped by user_session, written as a TSV of
// "session<TAB>max event_time<TAB>distinct user_ids ascending,
// comma-separated<TAB>count<TAB>sum of price", the lines shoal's job writes.
// `shoal bench peers` runs it beside `shoal run ecommerce` and checks that
// both wrote the same lines.
//
// It lives in its own module because DuckDB's Go driver
// (github.com/duckdb/duckdb-go/v2) needs cgo and links DuckDB's C++
// library: shoal's own module stays free of cgo.
//
// The rules of a valid purchase are those of jobs.ParseEcommerceRow, in
// SQL (see query for how the lines are split into fields): the WHERE
// clause checks event_time's canonical form, the price's digits and
// user_id's integer.
// The output is written to a temporary file beside --output and renamed
// into place once complete.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// setup runs before the query: the output's order does not matter, and
// unq removes a quoted CSV field's quotes and undoubles its inner quotes;
// qfield is field i (from 1) of a CSV line, split as encoding/csv does.
const setup = `
SET preserve_insertion_order = false;
CREATE MACRO unq(x) AS CASE WHEN starts_with(x, '"') THEN replace(x[2:-2], '""', '"') ELSE x END;
CREATE MACRO qfield(line, i) AS unq(regexp_extract_all(line, '(?:^|,)("(?:[^"]|"")*"|[^",]*)', 1)[i]);
`

// query is the ecommerce group-by; the %s are the input's and the
// output's paths, as SQL string literals.
//
// shoal reads a line at a time: a quote cannot open a field that goes on
// past the line's end, while DuckDB's CSV reader follows RFC 4180 and
// would read the lines after an unterminated quote as one field. So the
// file is read by DuckDB's reader without quoting (quote = ”), split at
// every comma into up to 16 pieces c1..c16 (null_padding: the missing
// ones are NULL; nullstr is a byte no row holds, so an empty piece stays
// ”). Only candidates go on: rows whose second piece is "purchase", or
// whose first or second piece opens a quote (the rows whose second CSV
// field can be "purchase"). Of those,
//
//   - a row without a quote is a row of 9 fields, as encoding/csv reads
//     it, if it has exactly 9 pieces;
//   - a row with a quote is joined back into its line and split by a
//     regular expression of encoding/csv's fields (a quoted field, with ""
//     for a quote inside, or a field without quotes); a line that is not 9
//     such fields is malformed.
//
// A line of more than 16 pieces is skipped (ignore_errors): encoding/csv
// could read it as 9 fields if quotes hold the extra commas; no line of
// the generated inputs has more than 10.
const query = `COPY (
	WITH candidates AS (
		SELECT *,
			concat_ws(',', c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16) AS line,
			contains(line, '"') AS q
		FROM read_csv(%s,
			header = true, delim = ',', quote = '', escape = '', new_line = '\n',
			auto_detect = false, null_padding = true, nullstr = '\x02', ignore_errors = true,
			columns = {
				'c1': 'VARCHAR', 'c2': 'VARCHAR', 'c3': 'VARCHAR', 'c4': 'VARCHAR', 'c5': 'VARCHAR',
				'c6': 'VARCHAR', 'c7': 'VARCHAR', 'c8': 'VARCHAR', 'c9': 'VARCHAR', 'c10': 'VARCHAR',
				'c11': 'VARCHAR', 'c12': 'VARCHAR', 'c13': 'VARCHAR', 'c14': 'VARCHAR', 'c15': 'VARCHAR',
				'c16': 'VARCHAR'})
		WHERE c2 = 'purchase' OR starts_with(c1, '"') OR starts_with(c2, '"')
	), rows AS (
		SELECT
			CASE WHEN q THEN qfield(line, 1) ELSE c1 END AS event_time,
			CASE WHEN q THEN qfield(line, 2) ELSE c2 END AS event_type,
			CASE WHEN q THEN qfield(line, 7) ELSE c7 END AS price,
			CASE WHEN q THEN qfield(line, 8) ELSE c8 END AS user_id,
			CASE WHEN q THEN qfield(line, 9) ELSE c9 END AS user_session
		FROM candidates
		WHERE CASE WHEN q THEN regexp_full_match(line, '("(?:[^"]|"")*"|[^",]*)(,("(?:[^"]|"")*"|[^",]*)){8}')
			ELSE c9 IS NOT NULL AND c10 IS NULL END
	), purchases AS (
		SELECT user_session AS session,
			left(event_time, 19) AS event_time,
			CAST(user_id AS BIGINT) AS user_id,
			CAST(price AS DECIMAL(18, 2)) AS price
		FROM rows
		WHERE event_type = 'purchase'
			AND regexp_full_match(event_time, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC')
			AND try_strptime(event_time, '%%Y-%%m-%%d %%H:%%M:%%S UTC') IS NOT NULL
			AND substr(event_time, 18, 2) < '60'
			AND regexp_full_match(price, '[0-9]{1,12}([.][0-9]{1,2})?')
			AND regexp_full_match(user_id, '[+-]?[0-9]+')
			AND try_cast(user_id AS BIGINT) IS NOT NULL
	)
	SELECT session, max(event_time),
		array_to_string(list_sort(list_distinct(list(user_id))), ','),
		count(*), CAST(sum(price) AS VARCHAR)
	FROM purchases GROUP BY session
) TO %s (FORMAT csv, DELIMITER '\t', HEADER false, QUOTE '', ESCAPE '')`

// result is what --json prints.
type result struct {
	Input   string  `json:"input"`
	Output  string  `json:"output"`
	Seconds float64 `json:"seconds"`
	Threads int     `json:"threads"`
	Version string  `json:"duckdb_version"`
}

func main() {
	input := flag.String("input", "", "the ecommerce CSV (required)")
	output := flag.String("output", "", "the TSV to write (required; must not exist)")
	threads := flag.Int("threads", 0, "DuckDB's threads (default: its own, one per core)")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	if err := run(*input, *output, *threads, *asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "duckcmp: %v\n", err)
		os.Exit(1)
	}
}

func run(input, output string, threads int, asJSON bool) error {
	if input == "" || output == "" || flag.NArg() > 0 {
		return errors.New("usage: duckcmp --input CSV --output TSV [--threads N] [--json]")
	}
	if _, err := os.Stat(input); err != nil {
		return err
	}
	if _, err := os.Lstat(output); err == nil {
		return fmt.Errorf("%s exists", output)
	}
	tmp := filepath.Join(filepath.Dir(output), "."+filepath.Base(output)+".tmp")
	os.Remove(tmp)
	defer os.Remove(tmp)

	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if threads > 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET threads = %d", threads)); err != nil {
			return err
		}
	}
	res := result{Input: input, Output: output}
	if err := conn.QueryRowContext(ctx, "SELECT version(), current_setting('threads')").Scan(&res.Version, &res.Threads); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, setup); err != nil {
		return err
	}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(query, literal(input), literal(tmp))); err != nil {
		return err
	}
	if err := os.Rename(tmp, output); err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("duckdb %s: %s grouped into %s in %.2fs (%d threads)\n", res.Version, input, output, res.Seconds, res.Threads)
	return nil
}

// literal quotes s as an SQL string literal.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
