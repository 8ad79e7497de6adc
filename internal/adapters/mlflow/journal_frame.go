package mlflow

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// The journal's on-disk format. A segment file starts with a header of
// segmentHeaderSize bytes and holds frames after it, back to back; the rest
// of the file is zeros (a fresh segment) or frames of an earlier use of the
// file (a recycled one), which carry another segment id and are never read.
//
// Segment header (little-endian):
//
//	0  magic    "tgjrnl01"
//	8  id       uint64, unique and increasing across the journal's life
//	16 firstSeq uint64, the sequence number of the segment's first frame
//	24 crc      uint32, CRC32C of bytes 0–24
//
// Frame (little-endian):
//
//	0  crc      uint32, CRC32C of bytes 4 to the payload's end
//	4  length   uint32, the payload's length
//	8  segment  uint64, the id of the segment it was written into
//	16 seq      uint64, strictly increasing across the journal
//	24 at       int64, when it was journaled (Unix nanoseconds)
//	32 kind     uint8
//	33 zero     7 bytes
//	40 payload
//
// A frame counts only with a valid checksum, the id of the segment it is
// in, and a sequence number above the previous frame's: so a torn write, a
// zeroed or stale region and a corrupted frame are all told apart from the
// frames that were committed.
const (
	segmentMagic      = "tgjrnl01"
	segmentHeaderSize = 64
	frameHeaderSize   = 40
	// maxPayload bounds one frame's payload, far above any call record
	// (request bodies are limited to tens of MiB).
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameKind says what a frame holds.
type frameKind uint8

// The frame kinds.
const (
	// kindRecord is a call record, pending until a kindDelivered frame
	// names its sequence number.
	kindRecord frameKind = 1
	// kindDelivered lists, as 8-byte sequence numbers, records that are in
	// MLflow's tables or set aside in quarantine.
	kindDelivered frameKind = 2
	// kindProbe has no payload: a write that checks the disk takes writes.
	kindProbe frameKind = 3
	// kindOwes has no payload and follows a record's frame in the same
	// commit (its sequence number is the record's plus one): the record's
	// call's settlement is owed, so the record stays in the journal, even
	// once a kindDelivered frame names it, until a kindSettled frame names
	// it too. The record itself stays a kindRecord frame, which an earlier
	// release reads and delivers as it always did.
	kindOwes frameKind = 4
	// kindSettled lists, as 8-byte sequence numbers, owed records whose
	// settlement the ledger has applied.
	kindSettled frameKind = 5
)

// frame is one frame's content.
type frame struct {
	kind    frameKind
	seq     uint64
	at      int64
	payload []byte
}

// appendSegmentHeader appends the header of segment id, whose first frame
// will have sequence number firstSeq, to dst.
func appendSegmentHeader(dst []byte, id, firstSeq uint64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, segmentHeaderSize)...)
	h := dst[start:]
	copy(h, segmentMagic)
	binary.LittleEndian.PutUint64(h[8:], id)
	binary.LittleEndian.PutUint64(h[16:], firstSeq)
	binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
	return dst
}

// decodeSegmentHeader returns the id and first sequence number of the
// segment whose file starts with b; ok is false for a file that is not
// (yet) a segment: a fresh spare, or a header that was never completed.
func decodeSegmentHeader(b []byte) (id, firstSeq uint64, ok bool) {
	if len(b) < segmentHeaderSize || string(b[:8]) != segmentMagic ||
		crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:]), true
}

// appendFrame appends f, framed for segment segID, to dst.
func appendFrame(dst []byte, segID uint64, f frame) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(f.payload)))
	binary.LittleEndian.PutUint64(h[8:], segID)
	binary.LittleEndian.PutUint64(h[16:], f.seq)
	binary.LittleEndian.PutUint64(h[24:], uint64(f.at))
	h[32] = byte(f.kind)
	dst = append(dst, f.payload...)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// decodeFrame decodes the frame of segment segID at the start of b and
// returns it with its size; ok is false when b does not start with one.
// The payload aliases b.
func decodeFrame(b []byte, segID uint64) (f frame, size int, ok bool) {
	if len(b) < frameHeaderSize || binary.LittleEndian.Uint64(b[8:]) != segID {
		return frame{}, 0, false
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > maxPayload || uint64(n) > uint64(len(b)-frameHeaderSize) {
		return frame{}, 0, false
	}
	size = frameHeaderSize + int(n)
	if crc32.Checksum(b[4:size], castagnoli) != binary.LittleEndian.Uint32(b) {
		return frame{}, 0, false
	}
	f = frame{
		kind: frameKind(b[32]), seq: binary.LittleEndian.Uint64(b[16:]),
		at: int64(binary.LittleEndian.Uint64(b[24:])), payload: b[frameHeaderSize:size],
	}
	if f.kind < kindRecord || f.kind > kindSettled || f.seq == 0 || !allZero(b[33:frameHeaderSize]) {
		return frame{}, 0, false
	}
	return f, size, true
}

// scannedFrame is a frame found in a segment, with the offset of its header.
type scannedFrame struct {
	frame
	off int64
}

// span is a byte range of a segment: [from, to).
type span struct{ from, to int64 }

// scan is what scanSegment found in one segment.
type scan struct {
	frames []scannedFrame
	// end is where the last frame ends: where appends continue.
	end int64
	// damaged are the ranges between frames that hold no frame: a frame
	// corrupted after it was committed, or a write torn in a way that let
	// a later frame of the same write reach the disk. The frames after
	// each range are kept.
	damaged []span
	// torn is true when a frame of the segment begins at end but is not
	// whole: the tail of a write that did not finish, cut off (appends
	// continue at end, over it).
	torn bool
}

// scanSegment finds the frames of segment id in data, the whole segment
// file, whose first frame has sequence number firstSeq or above. It never
// stops at a damaged frame while a later frame of the segment follows: it
// searches for the segment's id and resumes at the next valid frame.
func scanSegment(data []byte, id, firstSeq uint64) scan {
	var s scan
	prev := firstSeq - 1 // firstSeq is at least 1
	off := int64(segmentHeaderSize)
	for off < int64(len(data)) {
		f, size, ok := decodeFrame(data[off:], id)
		if ok && f.seq > prev {
			s.frames = append(s.frames, scannedFrame{frame: f, off: off})
			prev = f.seq
			off += int64(size)
			continue
		}
		next := nextFrame(data, off+1, id, prev)
		if next < 0 {
			break
		}
		s.damaged = append(s.damaged, span{off, next})
		off = next
	}
	s.end = min(off, int64(len(data)))
	s.torn = tornAt(data[s.end:], id)
	return s
}

// nextFrame returns the offset of the first valid frame of segment id at or
// after from whose sequence number is above prev, or -1.
func nextFrame(data []byte, from int64, id, prev uint64) int64 {
	var pattern [8]byte
	binary.LittleEndian.PutUint64(pattern[:], id)
	// The id sits 8 bytes into a frame's header.
	for at := from + 8; at < int64(len(data)); {
		i := bytes.Index(data[at:], pattern[:])
		if i < 0 {
			return -1
		}
		start := at + int64(i) - 8
		if f, _, ok := decodeFrame(data[start:], id); ok && f.seq > prev {
			return start
		}
		at += int64(i) + 1
	}
	return -1
}

// tornAt reports whether tail, the bytes after a segment's last frame,
// begins a frame of segment id that did not reach the disk whole: the tail
// of a write that did not finish. Zeros (a fresh segment) and frames of an
// earlier use of the file (a recycled one) carry another id.
func tornAt(tail []byte, id uint64) bool {
	return len(tail) >= 16 && binary.LittleEndian.Uint64(tail[8:]) == id
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// encodeSeqs encodes sequence numbers as a kindDelivered payload.
func encodeSeqs(seqs []uint64) []byte {
	out := make([]byte, 8*len(seqs))
	for i, s := range seqs {
		binary.LittleEndian.PutUint64(out[8*i:], s)
	}
	return out
}

// decodeSeqs decodes a kindDelivered payload; a trailing partial number
// (never written by encodeSeqs) is ignored.
func decodeSeqs(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}
