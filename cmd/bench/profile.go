package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// cpuShare returns the fraction of a CPU profile's time (the pprof format
// Go's runtime/pprof writes: a gzipped profile.proto) spent in samples with
// a frame whose function name starts with prefix. It reads only what that
// needs: the samples' locations and values, the locations' functions, the
// functions' names and the sample types.
func cpuShare(profile []byte, prefix string) (float64, error) {
	if zr, err := gzip.NewReader(bytes.NewReader(profile)); err == nil {
		if profile, err = io.ReadAll(zr); err != nil {
			return 0, fmt.Errorf("profile: %w", err)
		}
	}
	var p pprofData
	if err := p.decode(profile); err != nil {
		return 0, fmt.Errorf("profile: %w", err)
	}
	// The value to weigh samples by: CPU time when the profile has it
	// (Go's: samples/count and cpu/nanoseconds), else the first.
	index := 0
	for i, t := range p.sampleTypes {
		if p.str(t) == "cpu" {
			index = i
		}
	}
	matches := map[uint64]bool{} // by location id
	for id, fns := range p.locations {
		for _, fn := range fns {
			if strings.HasPrefix(p.str(p.functions[fn]), prefix) {
				matches[id] = true
				break
			}
		}
	}
	var total, in int64
	for _, s := range p.samples {
		if index >= len(s.values) {
			continue
		}
		v := s.values[index]
		total += v
		for _, loc := range s.locations {
			if matches[loc] {
				in += v
				break
			}
		}
	}
	if total == 0 {
		return 0, errors.New("profile: no samples")
	}
	return float64(in) / float64(total), nil
}

// pprofData is the part of a profile.proto message cpuShare reads.
type pprofData struct {
	sampleTypes []int64 // each sample type's type name, a string table index
	samples     []pprofSample
	locations   map[uint64][]uint64 // location id → function ids of its lines
	functions   map[uint64]int64    // function id → name's string table index
	strings     []string
}

type pprofSample struct {
	locations []uint64
	values    []int64
}

func (p *pprofData) str(i int64) string {
	if i < 0 || i >= int64(len(p.strings)) {
		return ""
	}
	return p.strings[i]
}

// The field numbers of profile.proto that cpuShare reads.
const (
	profileSampleType  = 1 // Profile.sample_type: ValueType
	profileSample      = 2 // Profile.sample: Sample
	profileLocation    = 4 // Profile.location: Location
	profileFunction    = 5 // Profile.function: Function
	profileStringTable = 6 // Profile.string_table: string
	valueTypeType      = 1 // ValueType.type
	sampleLocationID   = 1 // Sample.location_id (repeated, maybe packed)
	sampleValue        = 2 // Sample.value (repeated, maybe packed)
	locationID         = 1 // Location.id
	locationLine       = 4 // Location.line: Line
	lineFunctionID     = 1 // Line.function_id
	functionID         = 1 // Function.id
	functionName       = 2 // Function.name
)

func (p *pprofData) decode(b []byte) error {
	p.locations, p.functions = map[uint64][]uint64{}, map[uint64]int64{}
	return protoFields(b, func(field int, wire int, v uint64, msg []byte) error {
		switch {
		case field == profileSampleType && wire == 2:
			var t int64
			err := protoFields(msg, func(f, w int, v uint64, _ []byte) error {
				if f == valueTypeType && w == 0 {
					t = int64(v)
				}
				return nil
			})
			p.sampleTypes = append(p.sampleTypes, t)
			return err
		case field == profileSample && wire == 2:
			var s pprofSample
			err := protoFields(msg, func(f, w int, v uint64, packed []byte) error {
				switch f {
				case sampleLocationID:
					return protoUints(w, v, packed, func(u uint64) { s.locations = append(s.locations, u) })
				case sampleValue:
					return protoUints(w, v, packed, func(u uint64) { s.values = append(s.values, int64(u)) })
				}
				return nil
			})
			p.samples = append(p.samples, s)
			return err
		case field == profileLocation && wire == 2:
			var id uint64
			var fns []uint64
			err := protoFields(msg, func(f, w int, v uint64, line []byte) error {
				switch {
				case f == locationID && w == 0:
					id = v
				case f == locationLine && w == 2:
					return protoFields(line, func(f, w int, v uint64, _ []byte) error {
						if f == lineFunctionID && w == 0 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			p.locations[id] = fns
			return err
		case field == profileFunction && wire == 2:
			var id uint64
			var name int64
			err := protoFields(msg, func(f, w int, v uint64, _ []byte) error {
				switch {
				case f == functionID && w == 0:
					id = v
				case f == functionName && w == 0:
					name = int64(v)
				}
				return nil
			})
			p.functions[id] = name
			return err
		case field == profileStringTable && wire == 2:
			p.strings = append(p.strings, string(msg))
		}
		return nil
	})
}

// protoFields calls fn with each field of a protocol buffers message: its
// number, its wire type, and its value (a varint's) or its bytes (a
// length-delimited field's). Fixed-width fields are skipped.
func protoFields(b []byte, fn func(field, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		var v uint64
		var data []byte
		switch wire {
		case 0:
			if v, n = binary.Uvarint(b); n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("short fixed64")
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			data, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return fmt.Errorf("wire type %d", wire)
		}
		if err := fn(field, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}

// protoUints calls fn with the values of a repeated varint field: one
// value (wire type 0) or a packed run of them (wire type 2).
func protoUints(wire int, v uint64, packed []byte, fn func(uint64)) error {
	if wire == 0 {
		fn(v)
		return nil
	}
	for len(packed) > 0 {
		u, n := binary.Uvarint(packed)
		if n <= 0 {
			return errors.New("bad packed varint")
		}
		fn(u)
		packed = packed[n:]
	}
	return nil
}
