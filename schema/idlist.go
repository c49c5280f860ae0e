package schema

import "strconv"

// IDList returns ids as a JSON array: the one parameter through which a
// statement takes a list of row ids, as `id IN (SELECT value FROM
// json_each(?))`, whatever the list's length (SQLite binds at most
// 32,766 parameters to a statement, and a statement per length would
// not be prepared once).
func IDList(ids []int64) string {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
