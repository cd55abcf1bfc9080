package canonical_test

import (
	"errors"
	"fmt"

	"github.com/sendguard/sendguard/pkg/canonical"
)

func ExampleDecode() {
	ev, err := canonical.Decode([]byte(`{"type":"EVENT_TYPE_BOUNCED","recipient":"bob@example.com",
		"occurred_at":"2026-11-20T10:00:00+01:00","bounce":{"class":"hard","smtp_code":550}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := canonical.Marshal(ev)
	fmt.Println(string(out))

	_, err = canonical.Decode([]byte(`{"type":"bounced","bounce":{"class":"medium"}}`))
	var fe *canonical.FieldError
	fmt.Println(errors.As(err, &fe), fe.Field)
	// Output:
	// {"type":"bounced","occurred_at":"2026-11-20T09:00:00Z","recipient":"bob@example.com","bounce":{"class":"hard","smtp_code":550}}
	// true bounce.class
}
