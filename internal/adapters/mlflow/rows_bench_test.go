package mlflow

import (
	"fmt"
	"testing"
)

// BenchmarkTraceRows is the writer's work on a record besides the
// database's: decoding the journaled record and building its trace's rows,
// in a batch of 200 answered chat calls. It reports per record.
func BenchmarkTraceRows(b *testing.B) {
	const batch = 200
	values := make([][]byte, batch)
	for i := range values {
		v, err := encodeRecord(sample(fmt.Sprintf("bench-%d", i), 0, i), ContentFull)
		if err != nil {
			b.Fatal(err)
		}
		values[i] = v
	}
	exp := experiment{id: 1, artifactLocation: "mlflow-artifacts:/1"}
	b.ReportAllocs()
	for b.Loop() {
		var rs rows
		rs.reserve(batch)
		for _, v := range values {
			c, err := decodeRecord(v)
			if err != nil {
				b.Fatal(err)
			}
			if err := rs.addTrace(c, exp, "", ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
}
