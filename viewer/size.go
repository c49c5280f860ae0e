package viewer

import (
	"math/bits"
	"strconv"
)

// sizeBucket returns k such that size is in the bucket "below 2^k": k = 0
// for size 0 and the bit length of size otherwise, so "below 2^k" holds
// [2^(k-1), 2^k). A negative size has no bucket (-1).
func sizeBucket(size int64) int {
	if size < 0 {
		return -1
	}
	return bits.Len64(uint64(size))
}

// bucketBelow returns the bucket's name, the decimal of 2^k, up to
// "18446744073709551616" for k = 64.
func bucketBelow(k int) string {
	if k == 64 {
		return "18446744073709551616"
	}
	return strconv.FormatUint(uint64(1)<<k, 10)
}
