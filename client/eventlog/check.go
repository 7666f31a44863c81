package eventlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Check reports whether line is an event exactly as the contract has it:
// a known event, every field of its type present (those without
// omitempty), no field the type does not have, and every value of the
// type's JSON type. Readers need not be this strict (they skip what they
// do not know); tests of the writer are.
func Check(line []byte) error {
	ev, err := Decode(line)
	if err != nil {
		return err
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(line, &got); err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	name := Name(ev)
	want := Fields(ev)
	for _, f := range want {
		if _, ok := got[f.JSON]; !ok && !f.OmitEmpty {
			return fmt.Errorf("eventlog: %s event without %q: %s", name, f.JSON, line)
		}
	}
	for k := range got {
		if !slices.ContainsFunc(want, func(f Field) bool { return f.JSON == k }) {
			return fmt.Errorf("eventlog: %s event with %q, which its type does not have: %s", name, k, line)
		}
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(reflect.New(reflect.TypeOf(ev).Elem()).Interface()); err != nil {
		return fmt.Errorf("eventlog: %s event: %w: %s", name, err, line)
	}
	return nil
}

// Field is one JSON field of an event type.
type Field struct {
	JSON      string // its name in the log
	OmitEmpty bool   // absent when zero
}

// Fields lists the JSON fields of ev's type, ts and event first, in the
// order of the type's declaration.
func Fields(ev Event) []Field {
	return appendFields(nil, reflect.TypeOf(ev).Elem())
}

func appendFields(fs []Field, t reflect.Type) []Field {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("json")
		if sf.Anonymous && !ok {
			fs = appendFields(fs, sf.Type)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fs = append(fs, Field{JSON: name, OmitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return fs
}
