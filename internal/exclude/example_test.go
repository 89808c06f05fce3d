package exclude_test

import (
	"fmt"

	"github.com/coffer-backup/coffer/internal/exclude"
)

func ExampleMatcher_Match() {
	m, err := exclude.Compile([]string{"*.tmp", "node_modules/", "/build", "!keep.tmp"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Match("src/a.tmp", false))
	fmt.Println(m.Match("src/keep.tmp", false))
	fmt.Println(m.Match("web/node_modules", true))
	fmt.Println(m.Match("build", true))
	fmt.Println(m.Match("src/build", true))
	// Output:
	// true
	// false
	// true
	// true
	// false
}

func ExampleCompile_error() {
	_, err := exclude.Compile([]string{"*.[ch"})
	fmt.Println(err)
	// Output: exclude: pattern "*.[ch": unterminated [ class
}
