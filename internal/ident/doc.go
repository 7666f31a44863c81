// Package ident is the one syntax of the names that shoal turns into path
// elements and catalogue keys: application and worker IDs (the node
// service, the block store, workers) and checkpoint names.
//
// A valid name is 1 to 128 characters of ASCII letters, digits, '.', '_'
// and '-', starting with a letter or a digit. So it has no path separator,
// is never "." or "..", never a hidden file (the node keeps its catalogue
// and trash in dot-directories beside the applications' directories) and
// never contains \x00 (the catalogues use it as a key separator).
package ident
