package enforce

import "hash/fnv"

// Share returns instance index's part of a cap split across instances: the
// parts of all indexes 0..instances-1 sum to exactly capacity, and no two
// differ by more than one (the remainder goes to the lowest indexes). With
// instances ≤ 1, or an index outside 0..instances-1, Share returns capacity
// unchanged for instances ≤ 1 and 0 otherwise. A negative capacity is 0.
func Share(capacity int64, instances, index int) int64 {
	if capacity <= 0 {
		return 0
	}
	if instances <= 1 {
		return capacity
	}
	if index < 0 || index >= instances {
		return 0
	}
	n := int64(instances)
	part := capacity / n
	if int64(index) < capacity%n {
		part++
	}
	return part
}

// Owner picks the member that owns key by rendezvous (highest random weight)
// hashing: every caller with the same member list picks the same owner, and
// when a member joins or leaves only the keys it wins or held move. It
// returns "" for an empty member list. Use it to route all checks of one
// tenant|sender to one instance (Config.SenderAffinity).
func Owner(key string, members []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		h := fnv.New64a()
		_, _ = h.Write([]byte(m))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(key))
		score := mix64(h.Sum64())
		if best == "" || score > bestScore || (score == bestScore && m < best) {
			best, bestScore = m, score
		}
	}
	return best
}

// mix64 is the splitmix64 finaliser; it spreads FNV's weak high bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
