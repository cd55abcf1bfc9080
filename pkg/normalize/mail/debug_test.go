package mail

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDebugOne(t *testing.T) {
	f := os.Getenv("SG_ONE")
	if f == "" {
		t.Skip()
	}
	raw, _ := os.ReadFile(filepath.Join(samplesDir, "dsn", f))
	pm, err := readMessage(raw)
	fmt.Println("err", err, "reports", len(pm.reports), "texts", len(pm.texts), "htmls", len(pm.htmls), "orig", pm.original != nil)
	fmt.Printf("REPORT TEXT:\n%s\n---\n", pm.reportText())
	fmt.Printf("RCPTS: %+v\n", textRecipients(pm))
}
