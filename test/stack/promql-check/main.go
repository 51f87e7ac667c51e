// promql-check parses PromQL expressions with Prometheus' own parser: a JSON array of strings on stdin,
// one line per expression on stdout ("ok" or the parse error). Built by test/stack/promql-check.sh.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check: stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	// Default options: the functions and syntax a stock Prometheus accepts, no experimental ones.
	p := parser.NewParser(parser.Options{})
	failed := false
	for _, expr := range exprs {
		if _, err := p.ParseExpr(expr); err != nil {
			fmt.Println("error:", err)
			failed = true
		} else {
			fmt.Println("ok")
		}
	}
	if failed {
		os.Exit(1)
	}
}
