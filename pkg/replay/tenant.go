package replay

import (
	"encoding/json"
	"fmt"
)

// tenantOf returns the "tenant" field of a canonical JSON event, if any:
// offline, the file (not an API key) says whose events they are.
func tenantOf(line []byte) (string, error) {
	var v struct {
		Tenant string `json:"tenant"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return "", fmt.Errorf("malformed JSON: %w", err)
	}
	return v.Tenant, nil
}
