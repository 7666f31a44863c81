package checkpoint

import (
	"fmt"
	"strings"

	"shoal/internal/ident"
)

// The layout of a checkpoint NAME in a store:
//
//	NAME/part-00000      partition 0 (partition.go), one object each
//	NAME/part-00001
//	...
//	NAME/manifest.json   written last (manifest.go)
//
// Keys are relative to the store's root (the S3 prefix, the local
// directory), elements separated by '/'.
const manifestFile = "manifest.json"

// ValidateName reports whether name may name a checkpoint: the syntax of
// package ident, one path element that cannot be "." or ".." or a hidden
// or temporary file.
func ValidateName(name string) error {
	if err := ident.Check("checkpoint name", name); err != nil {
		return invalidf("%v (e.g. ranks-000030)", err)
	}
	return nil
}

// PartKey is the key of partition part of checkpoint name.
func PartKey(name string, part int) string {
	return fmt.Sprintf("%s/part-%05d", name, part)
}

// RunKey is the key, in the whole store, of key in run id's part of it
// (RunStore): APP/RUN/KEY, or key itself for a zero id.
func RunKey(id RunID, key string) string {
	if id.IsZero() {
		return key
	}
	return id.String() + "/" + key
}

// CheckKey reports whether key is a key every store accepts (see
// checkKey); the error wraps ErrInvalidArgument.
func CheckKey(key string) error { return checkKey(key) }

// ManifestKey is the key of checkpoint name's manifest.
func ManifestKey(name string) string { return name + "/" + manifestFile }

// PartitionURI is the URI of a partition's object, for messages and the
// event log's uri field (checkpoint_written, checkpoint_read).
func PartitionURI(st Store, name string, part int) string {
	return strings.TrimSuffix(st.String(), "/") + "/" + PartKey(name, part)
}

// checkpointOf returns the checkpoint name a key belongs to (its first
// element), or "" for a key outside any checkpoint.
func checkpointOf(key string) string {
	name, _, ok := strings.Cut(key, "/")
	if !ok || ValidateName(name) != nil {
		return ""
	}
	return name
}

// tmpPrefix starts the names of the local store's temporary files; no key
// element may start with it.
const tmpPrefix = ".tmp-"

// checkKey reports whether key is a key a store accepts: non-empty
// elements separated by '/', none of them "." or "..", none starting with
// tmpPrefix, no backslash or NUL. So a key never escapes a store's root.
func checkKey(key string) error {
	if key == "" {
		return invalidf("empty key")
	}
	if len(key) > 512 {
		return invalidf("key %.40q... is %d bytes long (at most 512)", key, len(key))
	}
	if strings.ContainsAny(key, "\\\x00") {
		return invalidf("key %q contains a backslash or NUL", key)
	}
	for elem := range strings.SplitSeq(key, "/") {
		switch {
		case elem == "":
			return invalidf("key %q has an empty element (leading, trailing or double '/')", key)
		case elem == "." || elem == "..":
			return invalidf("key %q has a %q element", key, elem)
		case strings.HasPrefix(elem, tmpPrefix):
			return invalidf("key %q has an element starting with %q (reserved for temporary files)", key, tmpPrefix)
		}
	}
	return nil
}

// checkPrefix reports whether prefix may be passed to List: "" or a key
// prefix that could not escape the root.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkKey(strings.TrimSuffix(prefix, "/") + "/x"); err != nil {
		return fmt.Errorf("list prefix %q: %w", prefix, err)
	}
	return nil
}
